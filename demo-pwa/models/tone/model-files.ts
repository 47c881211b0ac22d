/**
 * The tone model on disk: TF.js layers format, one `model.json` and one `weights.bin`.
 * Both directions live here so the trainer writes exactly what the page and the tests read.
 * Browser-safe: bytes and strings in, bytes and strings out.
 */
import { concatBytes, LengthMismatchError, MalformedError } from '@edgeship/protocol';
import type { io } from '@tensorflow/tfjs';

export const WEIGHTS_FILE = 'weights.bin';

export interface ModelFiles {
  /** The text of model.json. */
  modelJson: string;
  /** The bytes of weights.bin. */
  weights: Uint8Array;
}

/** Bytes per element of the dtypes a layers model saves unquantised. */
const DTYPE_BYTES: Readonly<Record<string, number>> = { float32: 4, int32: 4 };

/** For `tf.io.withSaveHandler`: the artifacts a layers model hands over on `save`. */
export function filesFromArtifacts(artifacts: io.ModelArtifacts): ModelFiles {
  if (artifacts.modelTopology === undefined || artifacts.modelTopology instanceof ArrayBuffer) {
    throw new MalformedError('expected a layers model topology (JSON), not a graph model');
  }
  const weightSpecs = artifacts.weightSpecs ?? [];
  const weights = joinWeightData(artifacts.weightData);
  checkWeightLength(weightSpecs, weights.byteLength);
  const modelJson: io.ModelJSON = {
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: weightSpecs }],
  };
  return { modelJson: `${JSON.stringify(modelJson)}\n`, weights };
}

/** For `tf.io.fromMemory`: checks the pair belongs together before TF.js sees it. */
export function artifactsFromFiles(files: ModelFiles): io.ModelArtifacts {
  let parsed: unknown;
  try {
    parsed = JSON.parse(files.modelJson);
  } catch (cause) {
    throw new MalformedError('model.json is not JSON', { cause });
  }
  const json = parsed as Partial<io.ModelJSON> | null;
  if (typeof json !== 'object' || json === null || typeof json.modelTopology !== 'object') {
    throw new MalformedError('model.json has no modelTopology');
  }
  const manifest = json.weightsManifest;
  // One group, one file: anything else was not written by filesFromArtifacts.
  if (!Array.isArray(manifest) || manifest.length !== 1 || manifest[0]?.paths?.join() !== WEIGHTS_FILE) {
    throw new MalformedError(`model.json must name exactly one weights file, ${WEIGHTS_FILE}`);
  }
  const weightSpecs = manifest[0].weights;
  checkWeightLength(weightSpecs, files.weights.byteLength);
  return {
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    weightSpecs,
    // A copy: the caller's view may sit inside a larger buffer (e.g. a Node Buffer pool).
    weightData: files.weights.slice().buffer,
  };
}

function joinWeightData(data: io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  const parts = Array.isArray(data) ? data : [data];
  return concatBytes(parts.map((part) => new Uint8Array(part)));
}

function checkWeightLength(specs: readonly io.WeightsManifestEntry[], actual: number): void {
  let expected = 0;
  for (const spec of specs) {
    const bytes = DTYPE_BYTES[spec.dtype];
    if (bytes === undefined || spec.quantization !== undefined) {
      throw new MalformedError(`weight ${spec.name} has unsupported dtype ${spec.dtype}`);
    }
    expected += bytes * spec.shape.reduce((n, d) => n * d, 1);
  }
  if (expected !== actual) {
    throw new LengthMismatchError(`weights hold ${actual} bytes, the manifest needs ${expected}`);
  }
}
