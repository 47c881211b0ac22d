import type { DType, Release, TensorSpec } from '@edgeship/protocol';
import {
  type EdgeshipError,
  float16ToNumber,
  InputError,
  MalformedError,
  mulberry32,
  numberToFloat16,
} from '@edgeship/protocol';

/** float16 travels as its raw bits in a Uint16Array; bool as 0/1 in a Uint8Array. */
export type TensorArray = Float32Array | Int32Array | BigInt64Array | Int8Array | Uint8Array | Uint16Array;
export interface TensorData {
  data: TensorArray;
  dims: number[];
}
export type NamedTensors = Record<string, TensorData>;

export type PreprocessStep = Release['preprocessing'][number];
export type PostprocessStep = Release['postprocessing'][number];

type ArrayCtor =
  | Float32ArrayConstructor
  | Int32ArrayConstructor
  | BigInt64ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Uint16ArrayConstructor;

/** The one array type each release dtype travels in. */
export const ARRAY_FOR_DTYPE: Readonly<Record<DType, ArrayCtor>> = Object.freeze({
  float32: Float32Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
});

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((n, d) => n * d, 1);
}

/**
 * Checks caller inputs against the release's input contract before they reach an engine, so a
 * bad call fails with E_INPUT and a message naming the tensor instead of an opaque ORT/tfjs
 * error (or, worse, a silently wrong answer from a misread buffer).
 */
export function validateInputs(specs: readonly TensorSpec[], inputs: NamedTensors): void {
  // Per call (the hot path): the names and whether any dim is symbolic are read once per contract.
  const { known, symbolic } = contractOf(specs);
  for (const name of Object.keys(inputs)) {
    if (!known.has(name)) throw inputError(`unknown input "${name}"; expected ${[...known].join(', ')}`);
  }
  const bound = symbolic ? new Map<string, { value: number; by: string }>() : null;
  for (const spec of specs) {
    const tensor = inputs[spec.name];
    if (!tensor) throw inputError(`missing input "${spec.name}"`);
    checkArrayType(spec, tensor);
    checkShape(spec, tensor, bound);
    if (tensor.data.length !== elementCount(tensor.dims)) {
      throw inputError(
        `input "${spec.name}" has ${tensor.data.length} elements, dims [${tensor.dims}] need ${elementCount(tensor.dims)}`,
      );
    }
    checkValues(spec, tensor);
  }
}

const contracts = new WeakMap<readonly TensorSpec[], { known: Set<string>; symbolic: boolean }>();

function contractOf(specs: readonly TensorSpec[]) {
  let contract = contracts.get(specs);
  if (!contract) {
    contract = {
      known: new Set(specs.map((s) => s.name)),
      symbolic: specs.some((s) => s.shape.some((d) => typeof d !== 'number')),
    };
    contracts.set(specs, contract);
  }
  return contract;
}

function checkArrayType(spec: TensorSpec, tensor: TensorData): void {
  const want = ARRAY_FOR_DTYPE[spec.dtype];
  if (!(tensor.data instanceof want)) {
    const got = (tensor.data as { constructor?: { name?: string } })?.constructor?.name ?? typeof tensor.data;
    throw inputError(`input "${spec.name}" is ${spec.dtype}: expected a ${want.name}, got ${got}`);
  }
}

function checkShape(
  spec: TensorSpec,
  tensor: TensorData,
  bound: Map<string, { value: number; by: string }> | null,
) {
  const { dims } = tensor;
  const { shape } = spec;
  if (!Array.isArray(dims) || dims.length !== shape.length) {
    throw inputError(`input "${spec.name}" must have rank ${shape.length} ([${shape}]), got [${dims}]`);
  }
  for (let axis = 0; axis < shape.length; axis++) {
    const want = shape[axis]!;
    const got = dims[axis]!;
    if (!Number.isSafeInteger(got) || got < 0) {
      throw inputError(`input "${spec.name}" dim ${axis} must be a non-negative integer, got ${got}`);
    }
    if (typeof want === 'number') {
      if (got !== want) throw inputError(`input "${spec.name}" dim ${axis} must be ${want}, got ${got}`);
      continue;
    }
    // A symbolic dim ("batch") must mean the same size wherever it appears.
    const seen = bound!.get(want);
    if (seen && seen.value !== got) {
      throw inputError(
        `input "${spec.name}" dim ${axis} ("${want}") is ${got}, but "${seen.by}" bound "${want}" to ${seen.value}`,
      );
    }
    if (!seen) bound!.set(want, { value: got, by: spec.name });
  }
}

function checkValues(spec: TensorSpec, tensor: TensorData): void {
  // The hot path (every inference): one tight loop over the array finds the first bad value;
  // only then is the slow, decoding loop run to say what is wrong.
  const bad = firstBadIndex(spec, tensor.data);
  if (bad === -1) return;
  const { range } = spec;
  const v = numbersOf(tensor.data, spec.dtype).at(bad);
  // NaN and ±Infinity are refused even without a declared range: they only ever come from a
  // caller bug, and would surface later as a non-finite output that looks like a broken model.
  if (!Number.isFinite(v)) throw inputError(`input "${spec.name}" has ${v} at index ${bad}`);
  if (range && (v < range.min || v > range.max)) {
    throw inputError(
      `input "${spec.name}" value ${v} at index ${bad} is outside [${range.min}, ${range.max}]`,
    );
  }
  throw inputError(`input "${spec.name}" is bool: value ${v} at index ${bad} is not 0 or 1`);
}

/** The index of the first value that is non-finite, outside the range or a bool not 0/1; -1 if none. */
function firstBadIndex(spec: TensorSpec, data: TensorArray): number {
  const min = spec.range?.min ?? Number.NEGATIVE_INFINITY;
  const max = spec.range?.max ?? Number.POSITIVE_INFINITY;
  if (spec.dtype === 'float32') {
    const f = data as Float32Array;
    // NaN fails both comparisons; ±Infinity fails the finiteness test (x - x is NaN).
    for (let i = 0; i < f.length; i++) {
      const v = f[i]!;
      if (!(v >= min && v <= max) || v - v !== 0) return i;
    }
    return -1;
  }
  if (spec.dtype === 'int64') {
    const big = data as BigInt64Array;
    for (let i = 0; i < big.length; i++) {
      const v = Number(big[i]!);
      if (!(v >= min && v <= max)) return i;
    }
    return -1;
  }
  if (spec.dtype === 'float16') {
    const values = numbersOf(data, spec.dtype);
    for (let i = 0; i < values.length; i++) {
      const v = values.at(i);
      if (!(v >= min && v <= max) || !Number.isFinite(v)) return i;
    }
    return -1;
  }
  // Integer arrays are finite by construction.
  const ints = data as Int32Array | Int8Array | Uint8Array;
  const lo = spec.dtype === 'bool' ? Math.max(min, 0) : min;
  const hi = spec.dtype === 'bool' ? Math.min(max, 1) : max;
  for (let i = 0; i < ints.length; i++) {
    const v = ints[i]!;
    if (v < lo || v > hi) return i;
  }
  return -1;
}

/** A read-only numeric view over any tensor array (float16 bits decoded, int64 as Number). */
function numbersOf(data: TensorArray, dtype: DType): { length: number; at(i: number): number } {
  if (dtype === 'float16') return { length: data.length, at: (i) => float16ToNumber(data[i] as number) };
  return { length: data.length, at: (i) => Number(data[i]) };
}

/** Runs the release's preprocessing. Touched tensors are copies; the caller's arrays stay as they were. */
export function applyPreprocessing(steps: readonly PreprocessStep[], inputs: NamedTensors): NamedTensors {
  if (steps.length === 0) return inputs;
  const out: NamedTensors = { ...inputs };
  const copied = new Set<string>();
  for (const step of steps) {
    const tensor = out[step.tensor];
    if (!tensor) throw stepError(`preprocessing step "${step.op}" names unknown input "${step.tensor}"`);
    if (!copied.has(step.tensor)) {
      out[step.tensor] = { data: tensor.data.slice(), dims: [...tensor.dims] };
      copied.add(step.tensor);
    }
    const data = out[step.tensor]!.data;
    if (step.op === 'scale') {
      // Scaling integers would silently truncate; the release must declare a float input.
      if (!(data instanceof Float32Array))
        throw stepError(`"scale" needs a float32 tensor, "${step.tensor}" is not`);
      for (let i = 0; i < data.length; i++) data[i] = data[i]! * step.mul + step.add;
    } else {
      if (data instanceof BigInt64Array || data instanceof Uint16Array) {
        throw stepError(`"clip" needs a float32 or 8/32-bit integer tensor, "${step.tensor}" is not`);
      }
      for (let i = 0; i < data.length; i++) data[i] = Math.min(step.max, Math.max(step.min, data[i]!));
    }
  }
  return out;
}

/** Runs the release's postprocessing: sigmoid elementwise, softmax over the last axis. */
export function applyPostprocessing(steps: readonly PostprocessStep[], outputs: NamedTensors): NamedTensors {
  if (steps.length === 0) return outputs;
  const out: NamedTensors = { ...outputs };
  for (const step of steps) {
    const tensor = out[step.tensor];
    if (!tensor) throw stepError(`postprocessing step "${step.op}" names unknown output "${step.tensor}"`);
    if (!(tensor.data instanceof Float32Array)) {
      throw stepError(`"${step.op}" needs a float32 tensor, "${step.tensor}" is not`);
    }
    const data = tensor.data.slice();
    if (step.op === 'sigmoid') {
      for (let i = 0; i < data.length; i++) data[i] = 1 / (1 + Math.exp(-data[i]!));
    } else {
      softmaxLastAxis(data, tensor.dims.at(-1) ?? data.length);
    }
    out[step.tensor] = { data, dims: [...tensor.dims] };
  }
  return out;
}

function softmaxLastAxis(data: Float32Array, width: number): void {
  if (width === 0) return;
  for (let row = 0; row < data.length; row += width) {
    let max = Number.NEGATIVE_INFINITY;
    for (let i = row; i < row + width; i++) max = Math.max(max, data[i]!);
    // Subtracting the row max keeps exp() from overflowing to Infinity on large logits.
    let sum = 0;
    for (let i = row; i < row + width; i++) {
      const e = Math.exp(data[i]! - max);
      data[i] = e;
      sum += e;
    }
    for (let i = row; i < row + width; i++) data[i] = data[i]! / sum;
  }
}

/** The name of the first output holding NaN or ±Infinity, or null when every output is finite. */
export function hasNonFinite(outputs: NamedTensors): string | null {
  for (const name in outputs) {
    const { data } = outputs[name]!;
    if (data instanceof Float32Array) {
      for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return name;
    } else if (data instanceof Uint16Array) {
      // float16: an all-ones exponent is Inf or NaN.
      for (let i = 0; i < data.length; i++) if ((data[i]! & 0x7c00) === 0x7c00) return name;
    }
  }
  return null;
}

/**
 * Deterministic inputs that satisfy `specs`: symbolic dims are 1, values are drawn from a seeded
 * generator inside the declared range (or [-1, 1) for floats, 0 for integers without one, so an
 * index or a sample rate is never absurd). Used for warm-up, autotune and health checks.
 */
export function sampleInputs(specs: readonly TensorSpec[]): NamedTensors {
  const inputs: NamedTensors = {};
  specs.forEach((spec, index) => {
    const dims = spec.shape.map((d) => (typeof d === 'number' ? d : 1));
    const random = mulberry32(0xed9e5 + index);
    const n = elementCount(dims);
    const draw = (): number => {
      const u = random();
      if (spec.range) return spec.range.min + u * (spec.range.max - spec.range.min);
      return isFloat(spec.dtype) ? u * 2 - 1 : 0;
    };
    inputs[spec.name] = { data: fill(spec.dtype, n, draw), dims };
  });
  return inputs;
}

function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float16';
}

function fill(dtype: DType, n: number, draw: () => number): TensorArray {
  switch (dtype) {
    case 'float32':
      return Float32Array.from({ length: n }, draw);
    case 'float16':
      return Uint16Array.from({ length: n }, () => numberToFloat16(draw()));
    case 'int64':
      return BigInt64Array.from({ length: n }, () => BigInt(Math.round(draw())));
    case 'bool':
      return Uint8Array.from({ length: n }, () => (draw() >= 0.5 ? 1 : 0));
    case 'int32':
      return Int32Array.from({ length: n }, () => Math.round(draw()));
    case 'int8':
      return Int8Array.from({ length: n }, () => Math.round(draw()));
    case 'uint8':
      return Uint8Array.from({ length: n }, () => Math.round(draw()));
  }
}

function inputError(message: string): InputError {
  return new InputError(message);
}

/** A step that cannot apply is a release defect, not a caller error. */
function stepError(message: string): EdgeshipError {
  return new MalformedError(message);
}
