import { createRequire } from 'node:module';
import { MalformedError } from '@edgeship/protocol';

// onnx-proto is CommonJS whose exports Node's ESM loader cannot detect, so it is required.
export const { onnx } = createRequire(import.meta.url)('onnx-proto') as typeof import('onnx-proto');

export type Model = import('onnx-proto').onnx.ModelProto;
export type Graph = import('onnx-proto').onnx.IGraphProto;
export type Node = import('onnx-proto').onnx.INodeProto;
export type Tensor = import('onnx-proto').onnx.ITensorProto;

export const DataType = onnx.TensorProto.DataType;
export const AttributeType = onnx.AttributeProto.AttributeType;

/** Parses a ModelProto; anything that is not one is E_MALFORMED. */
export function decodeModel(bytes: Uint8Array): Model {
  let model: Model;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new MalformedError(`not an ONNX model: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!model.graph) throw new MalformedError('not an ONNX model: it has no graph');
  return model;
}

export function encodeModel(model: Model): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** int64 fields come back as Long objects or numbers depending on protobufjs' setup. */
export function toNumber(value: number | { toNumber(): number } | null | undefined): number {
  if (value == null) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

/** The opset of the default (ai.onnx) domain; ModelProto requires one. */
export function defaultOpset(model: Model): number {
  const entry = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  return entry ? toNumber(entry.version) : 0;
}

/** Every graph of the model, main graph first, then the bodies of If/Loop/Scan, recursively. */
export function allGraphs(graph: Graph): Graph[] {
  const out: Graph[] = [graph];
  for (const node of graph.node ?? []) {
    for (const attr of node.attribute ?? []) {
      if (attr.g) out.push(...allGraphs(attr.g));
      for (const g of attr.graphs ?? []) out.push(...allGraphs(g));
    }
  }
  return out;
}

/**
 * Hands out tensor names no graph of the model uses yet. Subgraphs see their outer scope, so a
 * name must be unique across the whole model, not only in its own graph.
 */
export class NameRegistry {
  private readonly used = new Set<string>();

  constructor(model: Model) {
    for (const graph of allGraphs(model.graph!)) {
      for (const t of graph.initializer ?? []) if (t.name) this.used.add(t.name);
      for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
        if (v.name) this.used.add(v.name);
      }
      for (const node of graph.node ?? []) {
        for (const name of [...(node.input ?? []), ...(node.output ?? [])]) if (name) this.used.add(name);
        if (node.name) this.used.add(node.name);
      }
    }
  }

  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}

export function elementCount(tensor: Tensor): number {
  return (tensor.dims ?? []).reduce<number>((n, d) => n * toNumber(d), 1);
}

/**
 * A float32 tensor's values, or null when they are not stored inline (external data, segments)
 * and so cannot be rewritten here.
 */
export function readFloat32(tensor: Tensor): Float32Array | null {
  if (tensor.dataType !== DataType.FLOAT) return null;
  if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || tensor.segment) return null;
  const n = elementCount(tensor);
  const raw = tensor.rawData;
  if (raw && raw.length > 0) {
    if (raw.length !== n * 4) return null;
    // raw_data is little-endian (onnx.proto); copy so the view is aligned.
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  const data = tensor.floatData ?? [];
  return data.length === n ? Float32Array.from(data) : null;
}

export function makeTensor(name: string, dataType: number, dims: number[], rawData: Uint8Array): Tensor {
  return onnx.TensorProto.create({ name, dataType, dims, rawData });
}

/** A node with no name: names are optional (onnx.proto NodeProto.name) and cost bytes on the wire. */
export function makeNode(opType: string, inputs: string[], outputs: string[], attrs: Attr[] = []): Node {
  return onnx.NodeProto.create({
    opType,
    input: inputs,
    output: outputs,
    attribute: attrs.map((a) => onnx.AttributeProto.create(a)),
  });
}

export type Attr =
  | { name: string; type: typeof AttributeType.INT; i: number }
  | { name: string; type: typeof AttributeType.TENSOR; t: Tensor };

export function intAttr(name: string, i: number): Attr {
  return { name, type: AttributeType.INT, i };
}

export function tensorAttr(name: string, t: Tensor): Attr {
  return { name, type: AttributeType.TENSOR, t };
}
