/**
 * IEEE 754 binary16 ("half", float16) conversion, one implementation for the CLI that writes
 * float16 weights and the runtime that feeds float16 tensors, so both round every value alike.
 * Halves travel as their raw bits in a Uint16Array (Float16Array is not in every target).
 */

/** Largest finite half; weights beyond it would turn into Infinity. */
export const FLOAT16_MAX = 65504;

/** The canonical quiet NaN: a number's NaN payload and sign are not observable in JS anyway. */
const FLOAT16_NAN = 0x7e00;

const scratch = new DataView(new ArrayBuffer(8));

/**
 * A number's binary16 bits, rounded once to nearest, ties to even (IEEE 754 roundTiesToEven, as
 * hardware and Math.f16round do). The rounding reads the float64 bits, so a double is not first
 * rounded to float32 (rounding twice can land on the other side of a tie). Overflow gives
 * ±Infinity, tiny values subnormals or ±0.
 */
export function numberToFloat16(value: number): number {
  scratch.setFloat64(0, value);
  const hi = scratch.getUint32(0);
  const sticky = scratch.getUint32(4) !== 0; // the low 32 of the 52 fraction bits, any set
  const sign = (hi >>> 16) & 0x8000;
  const exponent = ((hi >>> 20) & 0x7ff) - 1023 + 15;
  const fraction = hi & 0xfffff; // the high 20 fraction bits
  if (exponent === 0x7ff - 1023 + 15) return fraction || sticky ? FLOAT16_NAN : sign | 0x7c00;
  if (exponent >= 31) return sign | 0x7c00;
  // Normal halves keep 10 of the 20 bits; a subnormal also shifts in the implicit leading 1.
  const significand = exponent > 0 ? fraction : fraction | 0x100000;
  const shift = exponent > 0 ? 10 : 11 - exponent;
  if (shift > 21) return sign; // below half the smallest subnormal (2^-25): ±0
  const kept = significand >>> shift;
  const rest = significand & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  const roundUp = rest > halfway || (rest === halfway && (sticky || (kept & 1) === 1));
  // A carry out of the fraction bumps the exponent: the right result, up to Infinity.
  return sign | (((exponent > 0 ? exponent << 10 : 0) | kept) + (roundUp ? 1 : 0));
}

/** The number binary16 bits hold (exact: every half is also a float32 and a float64). */
export function float16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}

/** Halves (as bits) of every value. */
export function toFloat16Array(values: ArrayLike<number>): Uint16Array<ArrayBuffer> {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = numberToFloat16(values[i]!);
  return out;
}

/** The values halves (as bits) hold, widened to float32 without loss. */
export function fromFloat16Array(bits: ArrayLike<number>): Float32Array<ArrayBuffer> {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = float16ToNumber(bits[i]!);
  return out;
}

/** Little-endian float16 bytes of values: the layout of ONNX raw_data and TensorFlow.js shards. */
export function toFloat16Bytes(values: ArrayLike<number>): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint16(i * 2, numberToFloat16(values[i]!), true);
  return out;
}
