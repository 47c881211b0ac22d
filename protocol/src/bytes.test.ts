import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64Url, fromHex, sha256Hex, toBase64Url, toHex, utf8 } from './bytes.ts';

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
});
