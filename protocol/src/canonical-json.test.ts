import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.ts';
import { EdgeshipError } from './errors.ts';

describe('canonicalJson (RFC 8785)', () => {
  it('is independent of key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 2], c: 'x' } })).toBe(
      canonicalJson({ a: { c: 'x', d: [1, 2] }, b: 1 }),
    );
    expect(canonicalJson({ b: 1, a: 2 })).toBe('{"a":2,"b":1}');
  });

  it('is independent of how the numbers were written', () => {
    const parsed = JSON.parse('{"x": 1.0, "y": 1e2, "z": 0.000001, "w": 1E21, "v": -0.0}');
    expect(canonicalJson(parsed)).toBe('{"v":0,"w":1e+21,"x":1,"y":100,"z":0.000001}');
  });

  it('sorts keys by UTF-16 code units, as the RFC requires', () => {
    // RFC 8785 section 3.2.3: sorting compares UTF-16 code units, so U+1F600 (a surrogate
    // pair starting 0xD83D) sorts before U+FB33.
    expect(canonicalJson({ '\uFB33': 1, '\u{1F600}': 2, a: 3 })).toBe('{"a":3,"\u{1F600}":2,"\uFB33":1}');
  });

  it('gives one text for every reordering of the same object', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (object) => {
        const reversed = Object.fromEntries(Object.entries(object).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(object));
        expect(canonicalJson(JSON.parse(canonicalJson(object)))).toBe(canonicalJson(object));
      }),
    );
  });

  it('refuses values JSON cannot carry', () => {
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(EdgeshipError);
    expect(() => canonicalJson({ x: Number.POSITIVE_INFINITY })).toThrow(/Infinity/);
  });
});
