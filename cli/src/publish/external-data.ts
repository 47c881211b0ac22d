import { dirname, isAbsolute, join, normalize } from 'node:path';
import { CliError } from '../commands/output.ts';
import { allGraphs, decodeModel, onnx } from '../quantize/onnx-model.ts';

/**
 * The ONNX external-data files a model names (`location` of each tensor stored outside the
 * protobuf, as models past its 2 GB limit must be), each with its path beside the model. They join
 * the release under the same relative names, which is how onnxruntime-web's `externalData`
 * session option matches them; they are read as streams when published. A model without external
 * data gives an empty map.
 */
export function externalDataLocations(modelPath: string, model: Uint8Array): Map<string, string> {
  const locations = new Set<string>();
  for (const graph of allGraphs(decodeModel(model).graph!)) {
    for (const tensor of graph.initializer ?? []) {
      if (tensor.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
      const location = tensor.externalData?.find((e) => e.key === 'location')?.value;
      if (!location) {
        throw new CliError(`${modelPath}: tensor ${tensor.name} is external but names no location`);
      }
      locations.add(location);
    }
  }
  const files = new Map<string, string>();
  for (const location of locations) {
    // The runtime looks files up by this name; one outside the model's folder is not part of it.
    const clean = normalize(location);
    if (isAbsolute(clean) || clean.startsWith('..') || clean === 'model.onnx') {
      throw new CliError(`${modelPath}: external data location "${location}" is not a file beside the model`);
    }
    files.set(location, join(dirname(modelPath), clean));
  }
  return files;
}
