// Real-sized ONNX models built at test time (nothing large is checked in): two MatMuls over
// big float32 initializers, written through onnx-proto, optionally with ONNX external data.
import type { Release } from '@edgeship/protocol';
import { DataType, encodeModel, onnx, type Tensor } from '../../cli/src/quantize/onnx-model.ts';

import { BIG_MODEL_OUTPUTS, EXTERNAL_DATA_PATH, weights } from './big-model-input.ts';

type ValueInfo = import('onnx-proto').onnx.IValueInfoProto;

export interface BigModelSpec {
  /** Width of the square first weight: 4·width² bytes (width 5000 ≈ 100 MB). */
  width: number;
  /** Weights in `model.onnx.data` beside the graph (ONNX external data) instead of inside it. */
  external: boolean;
  seed?: number;
}

// ORT reads external data with offsets as given; page alignment is what onnx's own writer uses.
const ALIGN = 4096;

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * input [1, width] → MatMul w1 [width, width] → MatMul w2 [width, 16] → output [1, 16].
 * Returns the release files: `model.onnx`, and `model.onnx.data` when external.
 */
export function bigOnnxModel(spec: BigModelSpec): Map<string, Uint8Array> {
  const { width, external } = spec;
  const seed = spec.seed ?? 1;
  const w1 = weights(width * width, seed, 1 / Math.sqrt(width));
  const w2 = weights(width * BIG_MODEL_OUTPUTS, seed + 1, 1 / Math.sqrt(width));
  const files = new Map<string, Uint8Array>();
  let dataLength = 0;
  const tensor = (name: string, dims: number[], values: Float32Array): Tensor => {
    if (!external) return { name, dims, dataType: DataType.FLOAT, rawData: bytesOf(values) };
    const offset = Math.ceil(dataLength / ALIGN) * ALIGN;
    dataLength = offset + values.byteLength;
    return {
      name,
      dims,
      dataType: DataType.FLOAT,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: EXTERNAL_DATA_PATH },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(values.byteLength) },
      ],
    };
  };
  const initializer = [tensor('w1', [width, width], w1), tensor('w2', [width, BIG_MODEL_OUTPUTS], w2)];
  const valueInfo = (name: string, dims: number[]): ValueInfo => ({
    name,
    type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'edgeship-test',
    graph: {
      name: 'big',
      node: [
        { opType: 'MatMul', input: ['input', 'w1'], output: ['hidden'], name: 'mm1' },
        { opType: 'MatMul', input: ['hidden', 'w2'], output: ['output'], name: 'mm2' },
      ],
      initializer,
      input: [valueInfo('input', [1, width])],
      output: [valueInfo('output', [1, BIG_MODEL_OUTPUTS])],
    },
  });
  files.set('model.onnx', encodeModel(model));
  if (external) {
    const data = new Uint8Array(dataLength);
    const [first, second] = initializer.map((t) => Number(t.externalData![1]!.value));
    data.set(bytesOf(w1), first);
    data.set(bytesOf(w2), second);
    files.set(EXTERNAL_DATA_PATH, data);
  }
  return files;
}

/** The contract of bigOnnxModel. */
export function bigModelContract(
  width: number,
): Pick<Release, 'inputs' | 'outputs' | 'preprocessing' | 'postprocessing' | 'monitoring'> {
  return {
    inputs: [{ name: 'input', dtype: 'float32', shape: [1, width] }],
    outputs: [{ name: 'output', dtype: 'float32', shape: [1, BIG_MODEL_OUTPUTS] }],
    preprocessing: [],
    postprocessing: [],
    monitoring: { features: [] },
  };
}
