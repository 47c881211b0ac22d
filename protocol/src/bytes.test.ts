import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromBase64Url, fromHex, sha256Hex, toBase64Url, toHex, utf8 } from './bytes.ts';

describe('bytes', () => {
  it('round-trips hex and base64url', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        expect(fromHex(toHex(bytes))).toEqual(bytes);
        expect(fromBase64Url(toBase64Url(bytes))).toEqual(bytes);
      }),
    );
  });

  it('accepts only the canonical base64url spelling', () => {
    // "AQ" is [1]; "AR" differs only in bits atob ignores and must not decode to the same bytes.
    expect(fromBase64Url('AQ')).toEqual(new Uint8Array([1]));
    expect(() => fromBase64Url('AR')).toThrow(/canonical/);
    expect(() => fromBase64Url('AQ==')).toThrow();
  });

  it('hashes with SHA-256', async () => {
    // FIPS 180-2 test vector.
    expect(await sha256Hex(utf8('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('joins bytes given as arguments or as one list, into a new buffer', () => {
    const a = Uint8Array.of(1, 2);
    const b = new Uint8Array(Uint8Array.of(9, 3, 4).buffer, 1); // a view with an offset
    expect([...concatBytes(a, b)]).toEqual([1, 2, 3, 4]);
    expect([...concatBytes([a, new Uint8Array(0), b])]).toEqual([1, 2, 3, 4]);
    expect(concatBytes().length).toBe(0);
    const joined = concatBytes([a]);
    joined[0] = 7;
    expect(a[0]).toBe(1);
  });

  it('joins a list too long to spread as arguments (a stream of tiny chunks)', () => {
    const parts = Array.from({ length: 300_000 }, (_, i) => Uint8Array.of(i & 0xff));
    const joined = concatBytes(parts);
    expect(joined.length).toBe(300_000);
    expect(joined[299_999]).toBe(299_999 & 0xff);
  });
});
