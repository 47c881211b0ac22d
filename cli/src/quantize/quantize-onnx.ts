import { FLOAT16_MAX, InputError, toFloat16Bytes } from '@edgeship/protocol';
import { quantizePerChannelBestAxis, quantizePerTensor } from './int8.ts';
import {
  AttributeType,
  allGraphs,
  DataType,
  decodeModel,
  defaultOpset,
  elementCount,
  encodeModel,
  type Graph,
  intAttr,
  type Model,
  makeNode,
  makeTensor,
  NameRegistry,
  type Node,
  readFloat32,
  type Tensor,
  tensorAttr,
  toNumber,
} from './onnx-model.ts';

export interface QuantizeOnnxOptions {
  mode: 'int8' | 'float16';
  /**
   * int8 only: symmetric scales per channel (axis 0, or an axis that reconstructs the weights far
   * better; see quantizePerChannelBestAxis). Default true; needs opset >= 13, else per-tensor.
   */
  perChannel?: boolean;
  /** Tensors with fewer elements stay float32: their bytes do not matter, their precision may. */
  minElements?: number;
  /**
   * Keep node names. By default they are dropped: they are optional debug labels
   * (onnx.proto NodeProto.name) and take 1.4% of Silero VAD's float32 file, 4.5% of its int8 one.
   */
  keepNodeNames?: boolean;
  /** Weights whose name matches stay float32, e.g. a layer that measurably loses accuracy. */
  exclude?: RegExp;
}

export interface QuantizeReport {
  mode: 'int8' | 'float16';
  /** Whether per-channel scales were actually written (false when the opset forced per-tensor). */
  perChannel: boolean;
  tensorsQuantized: number;
  /** float32 weights left as they were: too small, not inline, or not representable. */
  tensorsSkipped: number;
  bytesBefore: number;
  bytesAfter: number;
  /** bytesAfter / bytesBefore. */
  ratio: number;
  /** Why something was done differently than asked, e.g. a per-tensor fallback. */
  notes: string[];
}

// DequantizeLinear exists from opset 10; its `axis` (per-channel scales) from opset 13.
const DEQUANTIZE_MIN_OPSET = 10;
const PER_CHANNEL_MIN_OPSET = 13;
// Below opset 10 the dequantization is spelled Cast + Mul; broadcasting Mul needs opset 7.
const CAST_MUL_MIN_OPSET = 7;

/**
 * Weight-only quantization of an ONNX model. Every large float32 weight (initializer or Constant,
 * in the main graph and in If/Loop/Scan bodies) is stored as int8 or float16 and turned back into
 * float32 by a DequantizeLinear or Cast node that produces the weight's original name, in the same
 * graph, so no consumer changes.
 */
export async function quantizeOnnx(
  model: Uint8Array,
  opts: QuantizeOnnxOptions,
): Promise<{ bytes: Uint8Array; report: QuantizeReport }> {
  if (opts.mode !== 'int8' && opts.mode !== 'float16') {
    throw new InputError(`unknown quantization mode "${opts.mode}"; use int8 or float16`);
  }
  const minElements = opts.minElements ?? 1024;
  if (!Number.isInteger(minElements) || minElements < 1) {
    throw new InputError(`minElements must be a positive integer, got ${minElements}`);
  }
  const proto = decodeModel(model);
  const plan = planFor(proto, opts);
  const names = new NameRegistry(proto);
  const counts = { quantized: 0, skipped: 0 };
  const exclude = opts.exclude ?? null;
  for (const graph of allGraphs(proto.graph!)) {
    rewriteGraph(graph, { ...plan, minElements, exclude, names, counts });
  }
  if (!opts.keepNodeNames) {
    const dropped = dropNodeNames(proto);
    if (dropped > 0) plan.notes.push(`dropped ${dropped} node names (keepNodeNames keeps them)`);
  }
  const bytes = encodeModel(proto);
  return {
    bytes,
    report: {
      mode: opts.mode,
      perChannel: plan.perChannel,
      tensorsQuantized: counts.quantized,
      tensorsSkipped: counts.skipped,
      bytesBefore: model.length,
      bytesAfter: bytes.length,
      ratio: bytes.length / model.length,
      notes: plan.notes,
    },
  };
}

interface Plan {
  mode: 'int8' | 'float16';
  perChannel: boolean;
  /** float16: Cast; int8: DequantizeLinear, or Cast + Sub + Mul where the opset has none. */
  dequantizeWith: 'Cast' | 'DequantizeLinear' | 'CastMul';
  notes: string[];
}

/**
 * Picks how dequantization is spelled for this model's opset. The opset is never bumped: a newer
 * opset changes other operators' signatures (Unsqueeze, Split, Squeeze take inputs from 13 on).
 */
function planFor(model: Model, opts: QuantizeOnnxOptions): Plan {
  const opset = defaultOpset(model);
  const notes: string[] = [];
  if (opts.mode === 'float16') return { mode: 'float16', perChannel: false, dequantizeWith: 'Cast', notes };
  if (opset < CAST_MUL_MIN_OPSET) {
    throw new InputError(`int8 needs opset >= ${CAST_MUL_MIN_OPSET}; this model uses opset ${opset}`);
  }
  let perChannel = opts.perChannel ?? true;
  if (perChannel && opset < PER_CHANNEL_MIN_OPSET && opset >= DEQUANTIZE_MIN_OPSET) {
    perChannel = false;
    notes.push(
      `opset ${opset} < ${PER_CHANNEL_MIN_OPSET}: DequantizeLinear has no axis, used per-tensor scales`,
    );
  }
  const dequantizeWith = opset >= DEQUANTIZE_MIN_OPSET ? 'DequantizeLinear' : 'CastMul';
  if (dequantizeWith === 'CastMul') notes.push(`opset ${opset} has no DequantizeLinear: used Cast + Mul`);
  return { mode: 'int8', perChannel, dequantizeWith, notes };
}

interface Context extends Plan {
  minElements: number;
  exclude: RegExp | null;
  names: NameRegistry;
  counts: { quantized: number; skipped: number };
}

/** What replaces one float32 weight: stored tensors, and nodes that rebuild the original name. */
interface Replacement {
  tensors: Tensor[];
  nodes: Node[];
}

function rewriteGraph(graph: Graph, ctx: Context): void {
  // An initializer that is also a graph input is a default the caller may override (IR < 4).
  const inputs = new Set((graph.input ?? []).map((v) => v.name));
  const prepended: Node[] = [];
  const initializers: Tensor[] = [];
  for (const tensor of graph.initializer ?? []) {
    const replacement = inputs.has(tensor.name ?? '') ? skip(tensor, ctx) : replace(tensor, ctx);
    if (!replacement) {
      initializers.push(tensor);
      continue;
    }
    initializers.push(...replacement.tensors);
    prepended.push(...replacement.nodes);
  }
  const nodes: Node[] = [];
  for (const node of graph.node ?? []) {
    const value = node.opType === 'Constant' && !node.domain ? constantValue(node) : undefined;
    const replacement = value ? replace({ ...value, name: node.output?.[0] ?? '' }, ctx) : null;
    if (!replacement) {
      nodes.push(node);
      continue;
    }
    // The stored tensors stay Constant nodes, right where the weight was, so the order stays valid.
    for (const t of replacement.tensors) {
      // The output names the value; a second copy of the name inside the tensor is dead weight.
      const value = makeTensor('', t.dataType!, (t.dims ?? []).map(toNumber), t.rawData!);
      nodes.push(makeNode('Constant', [], [t.name!], [tensorAttr('value', value)]));
    }
    nodes.push(...replacement.nodes);
  }
  graph.initializer = initializers;
  graph.node = [...prepended, ...nodes];
}

function dropNodeNames(model: Model): number {
  let dropped = 0;
  for (const graph of allGraphs(model.graph!)) {
    for (const node of graph.node ?? []) {
      if (node.name) dropped++;
      // Deleted, not emptied: protobufjs writes any own property, even an empty string.
      delete (node as { name?: string }).name;
    }
  }
  return dropped;
}

function constantValue(node: Node): Tensor | undefined {
  const attr = node.attribute?.find((a) => a.name === 'value' && a.type === AttributeType.TENSOR);
  return attr?.t ?? undefined;
}

function skip(tensor: Tensor, ctx: Context): null {
  if (tensor.dataType === DataType.FLOAT) ctx.counts.skipped++;
  return null;
}

/** The replacement for a weight, or null to leave it as float32. */
function replace(tensor: Tensor, ctx: Context): Replacement | null {
  if (tensor.dataType !== DataType.FLOAT) return null;
  if (elementCount(tensor) < ctx.minElements || ctx.exclude?.test(tensor.name ?? ''))
    return skip(tensor, ctx);
  const values = readFloat32(tensor);
  if (!values?.every(Number.isFinite)) return skip(tensor, ctx);
  if (ctx.mode === 'float16' && !fitsFloat16(values)) return skip(tensor, ctx);
  const name = tensor.name ?? '';
  const dims = (tensor.dims ?? []).map(toNumber);
  const replacement =
    ctx.mode === 'float16' ? toFloat16(name, dims, values, ctx) : toInt8(name, dims, values, ctx);
  ctx.counts.quantized++;
  return replacement;
}

/** Whether every value survives the conversion as a finite float16. */
function fitsFloat16(values: Float32Array): boolean {
  for (const v of values) if (!(Math.abs(v) <= FLOAT16_MAX)) return false;
  return true;
}

function toFloat16(name: string, dims: number[], values: Float32Array, ctx: Context): Replacement {
  const stored = makeTensor(ctx.names.fresh(`${name}_fp16`), DataType.FLOAT16, dims, toFloat16Bytes(values));
  const cast = makeNode('Cast', [stored.name!], [name], [intAttr('to', DataType.FLOAT)]);
  return { tensors: [stored], nodes: [cast] };
}

function toInt8(name: string, dims: number[], values: Float32Array, ctx: Context): Replacement {
  // Per-channel scales only pay off for a matrix or kernel, not a vector.
  const perChannel = ctx.perChannel && dims.length >= 2;
  const q = perChannel ? quantizePerChannelBestAxis(values, dims) : quantizePerTensor(values);
  const scaleDims = perChannel ? [q.scales.length] : [];
  const stored = makeTensor(ctx.names.fresh(`${name}_quantized`), DataType.INT8, dims, bytesOf(q.values));
  const scale = makeTensor(ctx.names.fresh(`${name}_scale`), DataType.FLOAT, scaleDims, bytesOf(q.scales));
  if (ctx.dequantizeWith === 'DequantizeLinear') {
    // Symmetric per-channel scales need no zero point (it defaults to 0 of x's type); the axis is
    // always written, as it defaults to 1.
    if (perChannel) {
      const dq = makeNode(
        'DequantizeLinear',
        [stored.name!, scale.name!],
        [name],
        [intAttr('axis', q.axis!)],
      );
      return { tensors: [stored, scale], nodes: [dq] };
    }
    const zeroPoint = makeTensor(
      ctx.names.fresh(`${name}_zero_point`),
      DataType.INT8,
      [],
      bytesOf(q.zeroPoints),
    );
    const dq = makeNode('DequantizeLinear', [stored.name!, scale.name!, zeroPoint.name!], [name]);
    return { tensors: [stored, scale, zeroPoint], nodes: [dq] };
  }
  // Cast + Sub + Mul: (q - zeroPoint) * scale, with the scale shaped [1, C, 1, ...] (channels on
  // the axis the scales run along, which need not be 0) so that it broadcasts.
  const broadcastDims = perChannel ? dims.map((d, i) => (i === q.axis ? d : 1)) : [];
  scale.dims = broadcastDims;
  const zeroPoint = makeTensor(
    ctx.names.fresh(`${name}_zero_point`),
    DataType.FLOAT,
    broadcastDims,
    bytesOf(Float32Array.from(q.zeroPoints)),
  );
  const asFloat = ctx.names.fresh(`${name}_as_float`);
  const centered = ctx.names.fresh(`${name}_centered`);
  return {
    tensors: [stored, scale, zeroPoint],
    nodes: [
      makeNode('Cast', [stored.name!], [asFloat], [intAttr('to', DataType.FLOAT)]),
      makeNode('Sub', [asFloat, zeroPoint.name!], [centered]),
      makeNode('Mul', [centered, scale.name!], [name]),
    ],
  };
}

function bytesOf(array: Int8Array | Float32Array): Uint8Array {
  if (array instanceof Int8Array) return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  // raw_data is little-endian whatever the host is (onnx.proto, TensorProto.raw_data).
  const out = new Uint8Array(array.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < array.length; i++) view.setFloat32(i * 4, array[i]!, true);
  return out;
}
