// Four-number ONNX models built at test time, for tests that need a release to misbehave on
// some inputs only: `reciprocal` passes its health check (random non-zero inputs) and gives
// Infinity on a zero. `negate` (-x) ranks every class the other way round: a classifier whose
// argmax is always wrong where `identity`'s is right.
import type { Release } from '@edgeship/protocol';
import { DataType, encodeModel, onnx } from '../../cli/src/quantize/onnx-model.ts';

export type TinyModel = 'identity' | 'reciprocal' | 'negate';

const OP: Record<TinyModel, string> = { identity: 'Identity', reciprocal: 'Reciprocal', negate: 'Neg' };

const WIDTH = 4;

/** input [1, 4] → output [1, 4]: a copy, 1 / x, or -x. */
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
      node: [{ opType: OP[kind], input: ['input'], output: ['output'] }],
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
