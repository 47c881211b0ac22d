// Four-number ONNX models built at test time, for tests that need a release to misbehave on
// some inputs only: `reciprocal` passes its health check (random non-zero inputs) and gives
// Infinity on a zero.
import type { Release } from '@edgeship/protocol';
import { DataType, encodeModel, onnx } from '../../cli/src/quantize/onnx-model.ts';

export type TinyModel = 'identity' | 'reciprocal';

const WIDTH = 4;

/** input [1, 4] → output [1, 4]: a copy, or 1 / x. */
export function tinyOnnxModel(kind: TinyModel): Uint8Array {
  const valueInfo = (name: string) => ({
    name,
    type: {
      tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: 1 }, { dimValue: WIDTH }] } },
    },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'edgeship-test',
    graph: {
      name: kind,
      node: [
        { opType: kind === 'identity' ? 'Identity' : 'Reciprocal', input: ['input'], output: ['output'] },
      ],
      input: [valueInfo('input')],
      output: [valueInfo('output')],
    },
  });
  return encodeModel(model);
}

export const TINY_CONTRACT: Pick<
  Release,
  'inputs' | 'outputs' | 'preprocessing' | 'postprocessing' | 'monitoring'
> = {
  inputs: [{ name: 'input', dtype: 'float32', shape: [1, WIDTH] }],
  outputs: [{ name: 'output', dtype: 'float32', shape: [1, WIDTH] }],
  preprocessing: [],
  postprocessing: [],
  monitoring: { features: [] },
};
