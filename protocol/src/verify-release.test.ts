import { beforeAll, describe, expect, it } from 'vitest';
import { rejectionCode } from '../../test/support/rejection.ts';
import { createTestTrust, makeTestRelease, type TestTrust } from '../../test/support/trust.ts';
import { sha256Hex } from './bytes.ts';
import { canonicalJson } from './canonical-json.ts';
import { releaseDocumentBytes, releaseRef, verifyReleaseDocument } from './verify-release.ts';

let trust: TestTrust;

beforeAll(async () => {
  trust = await createTestTrust();
});

describe('verifyReleaseDocument', () => {
  it('accepts the document whose hash and length the manifest gives', async () => {
    const signed = await makeTestRelease(trust);
    const ref = await releaseRef(signed);
    const verified = await verifyReleaseDocument(
      releaseDocumentBytes(signed),
      { model: 'demo', ref },
      trust.keySet.signed,
    );
    expect(verified).toEqual(signed);
    expect(ref.size).toBe(releaseDocumentBytes(signed).length);
  });

  it('refuses a swapped document (another genuine release), a longer one and a reformatted one', async () => {
    const v1 = await makeTestRelease(trust);
    const v11 = await makeTestRelease(trust, { version: '1.1.0' });
    const ref = await releaseRef(v1);
    const expected = { model: 'demo', ref };
    const keySet = trust.keySet.signed;
    // Same length, other genuine release: the hash decides.
    expect(await rejectionCode(verifyReleaseDocument(releaseDocumentBytes(v11), expected, keySet))).toBe(
      'E_HASH',
    );
    const padded = new Uint8Array([...releaseDocumentBytes(v1), 0x20]);
    expect(await rejectionCode(verifyReleaseDocument(padded, expected, keySet))).toBe('E_LENGTH');
    // Bytes shifted by one, same length: the hash refuses them before anything is parsed.
    const respaced = new TextEncoder().encode(
      canonicalJson(v1).replace('{"signatures"', ' {"signatures"').slice(0, -1),
    );
    expect(new TextDecoder().decode(respaced)).not.toBe(canonicalJson(v1));
    expect(await rejectionCode(verifyReleaseDocument(respaced, expected, keySet))).toBe('E_HASH');
  });

  it('refuses a genuine document the manifest names under another model or version', async () => {
    const v11 = await makeTestRelease(trust, { version: '1.1.0' });
    // What a stolen online key can do: name v1.1.0's document as 1.0.0, or under another model.
    const asOlder = { ...(await releaseRef(v11)), version: '1.0.0' };
    const bytes = releaseDocumentBytes(v11);
    const keySet = trust.keySet.signed;
    expect(await rejectionCode(verifyReleaseDocument(bytes, { model: 'demo', ref: asOlder }, keySet))).toBe(
      'E_WRONG_TARGET',
    );
    const ref = await releaseRef(v11);
    expect(await rejectionCode(verifyReleaseDocument(bytes, { model: 'other', ref }, keySet))).toBe(
      'E_WRONG_TARGET',
    );
  });

  it('refuses bytes with the right hash that are not a release document', async () => {
    const bytes = new TextEncoder().encode('{"not":"a release"}');
    const ref = { version: '1.0.0', sha256: await sha256Hex(bytes), size: bytes.length };
    expect(
      await rejectionCode(verifyReleaseDocument(bytes, { model: 'demo', ref }, trust.keySet.signed)),
    ).toBe('E_MALFORMED');
  });
});
