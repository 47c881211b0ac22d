import { EdgeshipError, InputError, numberToFloat16, type TensorSpec } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import { SILERO_CONTRACT } from '../../../test/support/models.ts';
import {
  applyPostprocessing,
  applyPreprocessing,
  hasNonFinite,
  type NamedTensors,
  sampleInputs,
  validateInputs,
} from './tensor.ts';

function silero(overrides: Partial<NamedTensors> = {}): NamedTensors {
  return {
    input: { data: new Float32Array(512).fill(0.25), dims: [1, 512] },
    state: { data: new Float32Array(256), dims: [2, 1, 128] },
    sr: { data: new BigInt64Array([16_000n]), dims: [] },
    ...overrides,
  } as NamedTensors;
}

function inputErrorOf(run: () => void): InputError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).code).toBe('E_INPUT');
    return error as InputError;
  }
  throw new Error('expected an InputError');
}

describe('validateInputs', () => {
  const specs = SILERO_CONTRACT.inputs;

  it('accepts inputs that meet the contract', () => {
    expect(() => validateInputs(specs, silero())).not.toThrow();
  });

  it.each([
    [
      'a Float64Array for float32',
      { input: { data: new Float64Array(512), dims: [1, 512] } },
      /expected a Float32Array, got Float64Array/,
    ],
    [
      'an Int32Array for int64',
      { sr: { data: new Int32Array([16_000]), dims: [] } },
      /"sr" is int64: expected a BigInt64Array/,
    ],
    [
      'a plain array',
      { input: { data: Array(512).fill(0), dims: [1, 512] } },
      /expected a Float32Array, got Array/,
    ],
    [
      'the wrong rank',
      { state: { data: new Float32Array(256), dims: [2, 128] } },
      /"state" must have rank 3/,
    ],
    [
      'a wrong fixed dim',
      { input: { data: new Float32Array(256), dims: [1, 256] } },
      /"input" dim 1 must be 512, got 256/,
    ],
    [
      'a negative dim',
      { input: { data: new Float32Array(0), dims: [-1, 512] } },
      /dim 0 must be a non-negative integer/,
    ],
    [
      'fewer elements than dims',
      { state: { data: new Float32Array(255), dims: [2, 1, 128] } },
      /"state" has 255 elements/,
    ],
    [
      'a value above the range',
      { input: { data: new Float32Array(512).fill(1.5), dims: [1, 512] } },
      /value 1.5 at index 0 is outside \[-1, 1\]/,
    ],
    [
      'another sample rate',
      { sr: { data: new BigInt64Array([8_000n]), dims: [] } },
      /"sr" value 8000 at index 0 is outside \[16000, 16000\]/,
    ],
    [
      'NaN without a declared range',
      { state: { data: new Float32Array(256).fill(Number.NaN), dims: [2, 1, 128] } },
      /"state" has NaN at index 0/,
    ],
    [
      'Infinity without a declared range',
      { state: { data: new Float32Array(256).fill(Number.POSITIVE_INFINITY), dims: [2, 1, 128] } },
      /"state" has Infinity/,
    ],
  ])('refuses %s', (_, override, message) => {
    expect(
      inputErrorOf(() => validateInputs(specs, silero(override as Partial<NamedTensors>))).message,
    ).toMatch(message);
  });

  it('refuses missing and unknown inputs by name', () => {
    const { sr: _sr, ...withoutSr } = silero();
    expect(inputErrorOf(() => validateInputs(specs, withoutSr)).message).toBe('missing input "sr"');
    const extra = { ...silero(), audio: { data: new Float32Array(1), dims: [1] } };
    expect(inputErrorOf(() => validateInputs(specs, extra)).message).toMatch(
      /unknown input "audio"; expected input, state, sr/,
    );
  });

  it('binds a symbolic dim once across inputs', () => {
    const batched: TensorSpec[] = [
      { name: 'a', dtype: 'float32', shape: ['batch', 2] },
      { name: 'b', dtype: 'int32', shape: ['batch'] },
    ];
    const ok = { a: { data: new Float32Array(6), dims: [3, 2] }, b: { data: new Int32Array(3), dims: [3] } };
    expect(() => validateInputs(batched, ok)).not.toThrow();
    const clash = {
      a: { data: new Float32Array(6), dims: [3, 2] },
      b: { data: new Int32Array(2), dims: [2] },
    };
    expect(inputErrorOf(() => validateInputs(batched, clash)).message).toMatch(
      /"b" dim 0 \("batch"\) is 2, but "a" bound "batch" to 3/,
    );
  });

  it('checks bool values are 0 or 1 and float16 values by their decoded number', () => {
    const mask: TensorSpec[] = [{ name: 'mask', dtype: 'bool', shape: [3] }];
    expect(() =>
      validateInputs(mask, { mask: { data: new Uint8Array([0, 1, 1]), dims: [3] } }),
    ).not.toThrow();
    expect(
      inputErrorOf(() => validateInputs(mask, { mask: { data: new Uint8Array([0, 2, 1]), dims: [3] } }))
        .message,
    ).toMatch(/value 2 at index 1 is not 0 or 1/);

    const half: TensorSpec[] = [{ name: 'x', dtype: 'float16', shape: [2], range: { min: 0, max: 1 } }];
    const inRange = new Uint16Array([numberToFloat16(0.5), numberToFloat16(1)]);
    expect(() => validateInputs(half, { x: { data: inRange, dims: [2] } })).not.toThrow();
    const outOfRange = new Uint16Array([numberToFloat16(0.5), numberToFloat16(2)]);
    expect(inputErrorOf(() => validateInputs(half, { x: { data: outOfRange, dims: [2] } })).message).toMatch(
      /value 2 at index 1/,
    );
    expect(
      inputErrorOf(() => validateInputs(half, { x: { data: new Float32Array(2), dims: [2] } })).message,
    ).toMatch(/expected a Uint16Array/);
  });
});

describe('applyPreprocessing', () => {
  it('scales and clips copies, leaving the caller arrays alone', () => {
    const x = new Float32Array([-2, 0, 0.5, 2]);
    const ids = new Int32Array([-5, 3, 9]);
    const out = applyPreprocessing(
      [
        { op: 'scale', tensor: 'x', mul: 2, add: 1 },
        { op: 'clip', tensor: 'x', min: -1, max: 1.5 },
        { op: 'clip', tensor: 'ids', min: 0, max: 5 },
      ],
      { x: { data: x, dims: [4] }, ids: { data: ids, dims: [3] } },
    );
    expect(out.x!.data).toEqual(new Float32Array([-1, 1, 1.5, 1.5]));
    expect(out.ids!.data).toEqual(new Int32Array([0, 3, 5]));
    expect(Array.from(x)).toEqual([-2, 0, 0.5, 2]);
    expect(Array.from(ids)).toEqual([-5, 3, 9]);
  });

  it('refuses steps a release cannot mean, as a release defect', () => {
    const ints = { n: { data: new Int32Array([1]), dims: [1] } };
    for (const [steps, message] of [
      [[{ op: 'scale', tensor: 'n', mul: 0.5, add: 0 }], /"scale" needs a float32 tensor/],
      [[{ op: 'clip', tensor: 'missing', min: 0, max: 1 }], /names unknown input "missing"/],
    ] as const) {
      let caught: unknown;
      try {
        applyPreprocessing(steps, ints);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(EdgeshipError);
      expect(caught).not.toBeInstanceOf(InputError);
      expect((caught as EdgeshipError).code).toBe('E_MALFORMED');
      expect((caught as Error).message).toMatch(message);
    }
  });
});

describe('applyPostprocessing', () => {
  it('applies sigmoid elementwise and softmax over the last axis without overflow', () => {
    const logits = new Float32Array([0, 1000, 1000, 1, 2, 3]);
    const out = applyPostprocessing(
      [
        { op: 'sigmoid', tensor: 's' },
        { op: 'softmax', tensor: 'p' },
      ],
      { s: { data: new Float32Array([0, 2, -2]), dims: [3] }, p: { data: logits, dims: [2, 3] } },
    );
    const s = Array.from(out.s!.data as Float32Array);
    expect(s[0]).toBe(0.5);
    expect(s[1]).toBeCloseTo(0.880797, 6);
    expect(s[1]! + s[2]!).toBeCloseTo(1, 6);
    const p = Array.from(out.p!.data as Float32Array);
    expect(p.slice(0, 3)).toEqual([0, 0.5, 0.5]);
    expect(p[3]).toBeCloseTo(0.0900306, 6);
    expect(p[5]).toBeCloseTo(0.6652409, 6);
    expect(p.slice(3).reduce((a, b) => a + b)).toBeCloseTo(1, 6);
    expect(hasNonFinite(out)).toBeNull();
    expect(Array.from(logits)).toEqual([0, 1000, 1000, 1, 2, 3]); // the engine's array is untouched
  });

  it('refuses a non-float output as a release defect', () => {
    expect(() =>
      applyPostprocessing([{ op: 'softmax', tensor: 'k' }], { k: { data: new Int32Array([1]), dims: [1] } }),
    ).toThrow(/"softmax" needs a float32 tensor/);
  });
});

describe('hasNonFinite', () => {
  it('names the first float32 or float16 output holding NaN or Infinity', () => {
    const finite = { a: { data: new Float32Array([1, -3e38]), dims: [2] } };
    expect(hasNonFinite(finite)).toBeNull();
    expect(hasNonFinite({ ...finite, b: { data: new Float32Array([0, Number.NaN]), dims: [2] } })).toBe('b');
    expect(hasNonFinite({ c: { data: new Float32Array([Number.NEGATIVE_INFINITY]), dims: [1] } })).toBe('c');
    expect(hasNonFinite({ h: { data: new Uint16Array([0x3c00, 0x7bff]), dims: [2] } })).toBeNull();
    expect(hasNonFinite({ h: { data: new Uint16Array([0x3c00, 0xfc00]), dims: [2] } })).toBe('h');
    expect(hasNonFinite({ h: { data: new Uint16Array([0x7e00]), dims: [1] } })).toBe('h');
    // Integer outputs cannot be non-finite, whatever their bits.
    expect(hasNonFinite({ i: { data: new Int32Array([-1, 2 ** 31 - 1]), dims: [2] } })).toBeNull();
  });
});

describe('sampleInputs', () => {
  it('makes the same valid inputs every time, inside the declared ranges', () => {
    const specs: TensorSpec[] = [
      ...SILERO_CONTRACT.inputs,
      { name: 'ids', dtype: 'int32', shape: ['batch', 4], range: { min: 0, max: 9 } },
      { name: 'half', dtype: 'float16', shape: [3] },
      { name: 'mask', dtype: 'bool', shape: [5] },
    ];
    const a = sampleInputs(specs);
    const b = sampleInputs(specs);
    expect(a).toEqual(b);
    expect(() => validateInputs(specs, a)).not.toThrow();
    expect(a.sr!.data).toEqual(new BigInt64Array([16_000n]));
    expect(a.ids!.dims).toEqual([1, 4]); // symbolic dims become 1
    const input = Array.from(a.input!.data as Float32Array);
    expect(Math.min(...input)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...input)).toBeLessThanOrEqual(1);
    expect(new Set(input).size).toBeGreaterThan(500); // not a constant
  });
});
