import { type Graph, onnx } from '../src/quantize/onnx-model.ts';

const FLOAT = onnx.TensorProto.DataType.FLOAT;

/** Deterministic weights in [-1, 1) with one column ten times larger, so per-channel scales matter. */
export function tinyWeights(rows: number, cols: number): Float32Array {
  const w = new Float32Array(rows * cols);
  let x = 12345;
  for (let i = 0; i < w.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    w[i] = (x / 2 ** 32) * 2 - 1;
    if (i % cols === 0) w[i]! *= 10;
  }
  return w;
}

function valueInfo(name: string, dims: number[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
}

function floatTensor(name: string, dims: number[], values: Float32Array) {
  return onnx.TensorProto.create({ name, dataType: FLOAT, dims, floatData: Array.from(values) });
}

/**
 * y = x · W, with W [rows, cols] held as an initializer, or as a Constant node inside both branches
 * of an If (the way Silero VAD stores its weights), at the given opset.
 */
export function tinyMatMulModel(opts: {
  opset: number;
  rows?: number;
  cols?: number;
  inIf?: boolean;
}): Uint8Array {
  const rows = opts.rows ?? 64;
  const cols = opts.cols ?? 32;
  const w = tinyWeights(rows, cols);
  const matmul = (out: string) =>
    onnx.NodeProto.create({ opType: 'MatMul', input: ['x', 'W'], output: [out] });
  let graph: Graph;
  if (opts.inIf) {
    const branch = (name: string) =>
      onnx.GraphProto.create({
        name,
        node: [
          onnx.NodeProto.create({
            opType: 'Constant',
            output: ['W'],
            attribute: [
              {
                name: 'value',
                type: onnx.AttributeProto.AttributeType.TENSOR,
                t: floatTensor('', [rows, cols], w),
              },
            ],
          }),
          matmul(`${name}_y`),
        ],
        output: [valueInfo(`${name}_y`, [1, cols])],
      });
    const BOOL = onnx.TensorProto.DataType.BOOL;
    graph = onnx.GraphProto.create({
      name: 'tiny',
      node: [
        onnx.NodeProto.create({
          opType: 'Constant',
          output: ['cond'],
          attribute: [
            {
              name: 'value',
              type: onnx.AttributeProto.AttributeType.TENSOR,
              t: onnx.TensorProto.create({ dataType: BOOL, dims: [], int32Data: [1] }),
            },
          ],
        }),
        onnx.NodeProto.create({
          opType: 'If',
          input: ['cond'],
          output: ['y'],
          attribute: [
            { name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch('then') },
            { name: 'else_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch('else') },
          ],
        }),
      ],
      input: [valueInfo('x', [1, rows])],
      output: [valueInfo('y', [1, cols])],
    });
  } else {
    graph = onnx.GraphProto.create({
      name: 'tiny',
      node: [matmul('y')],
      initializer: [floatTensor('W', [rows, cols], w)],
      input: [valueInfo('x', [1, rows])],
      output: [valueInfo('y', [1, cols])],
    });
  }
  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: opts.opset }],
    producerName: 'edgeship-test',
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}
