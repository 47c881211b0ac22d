import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FLOAT16_MAX,
  float16ToNumber,
  fromFloat16Array,
  numberToFloat16,
  toFloat16Array,
  toFloat16Bytes,
} from './float16.ts';

const ALL_BITS = Uint16Array.from({ length: 0x10000 }, (_, i) => i);
const isNaNBits = (bits: number) => (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;

// The finite halves from -65504 to 65504 in increasing order (-0 left out: it equals +0).
const SORTED_BITS = [
  ...Array.from({ length: 0x7bff }, (_, i) => 0x8000 | (0x7bff - i)),
  ...Array.from({ length: 0x7c00 }, (_, i) => i),
];
const SORTED_VALUES = SORTED_BITS.map(float16ToNumber);

/**
 * An oracle by another road: the nearest finite half by binary search over every half, ties to
 * the even bit pattern, Infinity from 65520 (the tie between 65504 and 2^16) on. The differences
 * are exact (Sterbenz), so for any double this is the correctly rounded result.
 */
function nearestHalf(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  if (Math.abs(x) >= 65_520) return x > 0 ? 0x7c00 : 0xfc00;
  let lo = 0;
  let hi = SORTED_VALUES.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (SORTED_VALUES[mid]! <= x) lo = mid;
    else hi = mid;
  }
  const below = x - SORTED_VALUES[lo]!;
  const above = SORTED_VALUES[hi]! - x;
  let bits = below < above ? SORTED_BITS[lo]! : above < below ? SORTED_BITS[hi]! : undefined;
  bits ??= SORTED_BITS[lo]! & 1 ? SORTED_BITS[hi]! : SORTED_BITS[lo]!;
  // Zero keeps the sign of what rounded to it.
  if ((bits & 0x7fff) === 0) return x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  return bits;
}

/** The float32 next to `x` (a float32) away from zero (+1) or toward it (-1). */
function float32Step(x: number, direction: 1 | -1): number {
  const u32 = new Uint32Array(Float32Array.of(x).buffer);
  u32[0]! += direction;
  return new Float32Array(u32.buffer)[0]!;
}

describe('float16', () => {
  it('decodes the IEEE 754 binary16 reference patterns', () => {
    expect(float16ToNumber(0x3c00)).toBe(1);
    expect(float16ToNumber(0xc000)).toBe(-2);
    expect(float16ToNumber(0x7bff)).toBe(FLOAT16_MAX);
    expect(float16ToNumber(0x0400)).toBe(2 ** -14); // smallest normal
    expect(float16ToNumber(0x03ff)).toBe(2 ** -14 - 2 ** -24); // largest subnormal
    expect(float16ToNumber(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(float16ToNumber(0x3555)).toBe(0.333251953125);
    expect(float16ToNumber(0x3bff)).toBe(1 - 2 ** -11);
    expect(float16ToNumber(0x3c01)).toBe(1 + 2 ** -10);
    expect(Object.is(float16ToNumber(0x8000), -0)).toBe(true);
    expect(float16ToNumber(0x7c00)).toBe(Number.POSITIVE_INFINITY);
    expect(float16ToNumber(0xfc00)).toBe(Number.NEGATIVE_INFINITY);
    expect(float16ToNumber(0x7e00)).toBeNaN();
    expect(float16ToNumber(0xfc01)).toBeNaN();
  });

  it('rounds to nearest, ties to even, on hand-checked values', () => {
    expect(numberToFloat16(1 + 2 ** -11)).toBe(0x3c00); // tie: down to the even 1.0
    expect(numberToFloat16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: up to the even neighbour
    expect(numberToFloat16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just past the tie
    // Just past the tie by less than a float32 can hold: rounding to float32 first would land on
    // the tie and then on 1.0.
    expect(numberToFloat16(1 + 2 ** -11 + 2 ** -40)).toBe(0x3c01);
    expect(numberToFloat16(0.1)).toBe(0x2e66);
    expect(numberToFloat16(-1 / 3)).toBe(0xb555);
    expect(numberToFloat16(65_519)).toBe(0x7bff);
    expect(numberToFloat16(65_520)).toBe(0x7c00); // the tie above the largest half: Infinity
    expect(numberToFloat16(-1e9)).toBe(0xfc00);
    expect(numberToFloat16(Number.MAX_VALUE)).toBe(0x7c00);
    expect(numberToFloat16(2 ** -24)).toBe(0x0001);
    expect(numberToFloat16(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal
    expect(numberToFloat16(2 ** -25 + 2 ** -60)).toBe(0x0001);
    expect(numberToFloat16(-(2 ** -26))).toBe(0x8000);
    expect(numberToFloat16(3 * 2 ** -25)).toBe(0x0002);
    expect(numberToFloat16(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the normals
    expect(numberToFloat16(Number.MIN_VALUE)).toBe(0x0000); // a float64 subnormal
    expect(numberToFloat16(-0)).toBe(0x8000);
    expect(numberToFloat16(Number.POSITIVE_INFINITY)).toBe(0x7c00);
    expect(numberToFloat16(Number.NEGATIVE_INFINITY)).toBe(0xfc00);
    expect(numberToFloat16(Number.NaN)).toBe(0x7e00);
  });

  it('round-trips every one of the 65,536 bit patterns (NaN stays NaN)', () => {
    const mismatched: string[] = [];
    for (const bits of ALL_BITS) {
      const value = float16ToNumber(bits);
      const back = numberToFloat16(value);
      // A half is exactly a float32, so going through a Float32Array must not change it either.
      const viaFloat32 = numberToFloat16(Math.fround(value));
      const ok = isNaNBits(bits)
        ? Number.isNaN(value) && isNaNBits(back) && isNaNBits(viaFloat32)
        : back === bits && viaFloat32 === bits && Math.fround(value) === value;
      if (!ok) mismatched.push(bits.toString(16));
    }
    expect(mismatched).toEqual([]);
  });

  it('array and byte forms give the scalar bits for every pattern', () => {
    const values = fromFloat16Array(ALL_BITS);
    const bits = toFloat16Array(values);
    const bytes = toFloat16Bytes(values);
    const view = new DataView(bytes.buffer);
    const mismatched: string[] = [];
    for (const b of ALL_BITS) {
      const expected = numberToFloat16(float16ToNumber(b));
      const value = values[b]!;
      const sameValue = Number.isNaN(value) ? isNaNBits(b) : Object.is(value, float16ToNumber(b));
      if (!sameValue || bits[b] !== expected || view.getUint16(b * 2, true) !== expected) {
        mismatched.push(b.toString(16));
      }
    }
    expect(mismatched).toEqual([]);
    expect(bytes.length).toBe(2 * 0x10000);
    expect([...toFloat16Bytes([1])]).toEqual([0x00, 0x3c]); // little-endian
  });

  it('rounds float32 values at every tie between neighbouring halves to the even one', () => {
    const mismatched: string[] = [];
    // Every pair of neighbouring non-negative finite halves, and the largest half with Infinity.
    for (let low = 0; low <= 0x7bff; low++) {
      const high = low + 1;
      const tie = low === 0x7bff ? 65_520 : (float16ToNumber(low) + float16ToNumber(high)) / 2;
      // 12 significant bits: a float32 holds the tie exactly.
      if (Math.fround(tie) !== tie) mismatched.push(`${tie} is not a float32`);
      const even = low & 1 ? high : low;
      for (const sign of [0, 0x8000]) {
        const s = sign ? -1 : 1;
        const cases: [number, number][] = [
          [s * tie, sign | even],
          [s * float32Step(tie, -1), sign | low],
          [s * float32Step(tie, 1), sign | high],
        ];
        for (const [value, expected] of cases) {
          if (numberToFloat16(value) !== expected) mismatched.push(`${value} -> ${expected.toString(16)}`);
        }
      }
    }
    expect(mismatched).toEqual([]);
  });

  it('agrees with the nearest half found by search, for float32 and float64 values', () => {
    fc.assert(
      fc.property(fc.float(), (x) => {
        expect(numberToFloat16(x)).toBe(nearestHalf(x));
      }),
      { numRuns: 20_000 },
    );
    // Doubles near halves' ties, where rounding to float32 first would go wrong.
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0x7bfe }),
        fc.integer({ min: -(2 ** 20), max: 2 ** 20 }),
        (low, offset) => {
          const tie = (float16ToNumber(low) + float16ToNumber(low + 1)) / 2;
          const x = tie + offset * 2 ** -52 * Math.max(tie, 2 ** -24);
          expect(numberToFloat16(x)).toBe(nearestHalf(x));
        },
      ),
      { numRuns: 20_000 },
    );
    fc.assert(
      fc.property(fc.double(), (x) => {
        expect(numberToFloat16(x)).toBe(nearestHalf(x));
      }),
      { numRuns: 20_000 },
    );
  });
});

// Chromium has the platform's own binary16 (Math.f16round, DataView#setFloat16); Node 20 has not,
// so this block runs in the browser project (protocol's tests run in both).
const native = Math as Math & { f16round?: (x: number) => number };
const nativeView = DataView.prototype as DataView & {
  setFloat16?: (offset: number, value: number, littleEndian?: boolean) => void;
  getFloat16?: (offset: number, littleEndian?: boolean) => number;
};

describe.runIf(typeof native.f16round === 'function' && typeof nativeView.setFloat16 === 'function')(
  'float16 against the platform',
  () => {
    const view = new DataView(new ArrayBuffer(2)) as typeof nativeView;
    const platformBits = (x: number) => {
      view.setFloat16!(0, x);
      return view.getUint16(0);
    };

    it('decodes and encodes every bit pattern as DataView#getFloat16 / setFloat16 do', () => {
      const mismatched: string[] = [];
      for (const bits of ALL_BITS) {
        view.setUint16(0, bits);
        const platformValue = view.getFloat16!(0);
        const value = float16ToNumber(bits);
        const decodes = Number.isNaN(platformValue) ? Number.isNaN(value) : Object.is(platformValue, value);
        const ours = numberToFloat16(value);
        const encodes = isNaNBits(ours) ? isNaNBits(platformBits(value)) : ours === platformBits(value);
        if (!decodes || !encodes) mismatched.push(bits.toString(16));
      }
      expect(mismatched).toEqual([]);
    });

    it('rounds float32 and float64 values as Math.f16round does', () => {
      const same = (x: number) => {
        const ours = float16ToNumber(numberToFloat16(x));
        const theirs = native.f16round!(x);
        return Number.isNaN(theirs) ? Number.isNaN(ours) : Object.is(ours, theirs);
      };
      const mismatched: number[] = [];
      for (let low = 0; low < 0x7bff; low++) {
        const tie = (float16ToNumber(low) + float16ToNumber(low + 1)) / 2;
        for (const x of [tie, float32Step(tie, 1), float32Step(tie, -1), tie * (1 + 2 ** -40), -tie]) {
          if (!same(x)) mismatched.push(x);
        }
      }
      expect(mismatched).toEqual([]);
      fc.assert(
        fc.property(fc.oneof(fc.float(), fc.double()), (x) => {
          expect(same(x)).toBe(true);
          expect(numberToFloat16(x) === platformBits(x) || isNaNBits(platformBits(x))).toBe(true);
        }),
        { numRuns: 50_000 },
      );
    });
  },
);
