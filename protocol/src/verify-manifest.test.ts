import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { rejectionCode } from '../../test/support/rejection.ts';
import {
  createTestTrust,
  HOUR,
  makeTestManifest,
  makeTestRelease,
  type TestTrust,
} from '../../test/support/trust.ts';
import { canonicalJson } from './canonical-json.ts';
import { EdgeshipError } from './errors.ts';
import type { ReleaseRef } from './manifest.ts';
import { signKeySet, signManifest } from './sign.ts';
import { generateSigningKey, publicEntry, signEnvelope, signPayload, verifyThreshold } from './signature.ts';
import { type ManifestCheck, verifyManifest } from './verify-manifest.ts';
import { releaseDocumentBytes, releaseRef, verifyReleaseDocument } from './verify-release.ts';

let trust: TestTrust;
let check: ManifestCheck;

beforeAll(async () => {
  trust = await createTestTrust();
  check = { root: trust.trustedRoot, app: 'demo-app', channel: 'stable', now: new Date() };
});

/** A signed manifest of model `demo`: production 1.0.0 and a canary of 1.1.0 with these fields. */
function manifestWithRollout(fields: Record<string, unknown>, releases: ReleaseRef[]) {
  return makeTestManifest(trust, {
    models: [
      {
        name: 'demo',
        production: '1.0.0',
        rollout: {
          id: 'r1',
          release: '1.1.0',
          salt: '0'.repeat(32),
          control: '1.0.0',
          mode: 'canary',
          ...fields,
        } as never,
        releases,
      },
    ],
  });
}

describe('verifyManifest', () => {
  it('accepts a manifest signed by an online key of a root-signed key set', async () => {
    const envelope = await makeTestManifest(trust);
    const { manifest, keySet } = await verifyManifest(JSON.stringify(envelope, null, 2), check);
    expect(manifest.models[0]?.releases[0]?.version).toBe('1.0.0');
    expect(keySet.version).toBe(1);
  });

  it('rejects a change to any byte of the signed document', async () => {
    const text = canonicalJson(await makeTestManifest(trust));
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: text.length - 1 }),
        fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
        async (at, replacement) => {
          fc.pre(text[at] !== replacement);
          const tampered = text.slice(0, at) + replacement + text.slice(at + 1);
          await expect(verifyManifest(tampered, check)).rejects.toBeInstanceOf(EdgeshipError);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects a manifest signed by a key the key set does not name', async () => {
    const stranger = await generateSigningKey();
    expect(
      await rejectionCode(
        verifyManifest(JSON.stringify(await makeTestManifest(trust, {}, [stranger])), check),
      ),
    ).toBe('E_UNKNOWN_KEY');
  });

  it('rejects a key set that no pinned root key signed', async () => {
    const otherTrust = await createTestTrust();
    const envelope = { ...(await makeTestManifest(trust)), keySet: otherTrust.keySet };
    expect(await rejectionCode(verifyManifest(JSON.stringify(envelope), check))).toBe('E_UNKNOWN_KEY');
  });

  it('rejects an expired manifest and an older manifest with distinct errors', async () => {
    // Relative to the check's clock (set once in beforeAll), not the wall clock: on a loaded
    // machine more than a second can pass between the two, and the manifest would not be expired.
    const expired = await makeTestManifest(trust, {
      expiresAt: new Date(check.now.getTime() - 1000).toISOString(),
    });
    expect(await rejectionCode(verifyManifest(JSON.stringify(expired), check))).toBe('E_EXPIRED');

    const old = await makeTestManifest(trust, { version: 3 });
    expect(await rejectionCode(verifyManifest(JSON.stringify(old), { ...check, minVersion: 4 }))).toBe(
      'E_ROLLBACK',
    );
    // The same version again is not a rollback: it is simply no news.
    await expect(verifyManifest(JSON.stringify(old), { ...check, minVersion: 3 })).resolves.toBeTruthy();
  });

  it('rejects a manifest for another app or channel', async () => {
    const other = await makeTestManifest(trust, { channel: 'beta' });
    expect(await rejectionCode(verifyManifest(JSON.stringify(other), check))).toBe('E_WRONG_TARGET');
  });

  it('rejects a release that no publisher key signed, even in a validly signed manifest', async () => {
    // A compromised online key signs a manifest offering a release it signed itself: the manifest
    // names the document by hash, and the document's publisher signature fails when it is fetched.
    const forged = await makeTestRelease({ ...trust, publisher: trust.online });
    const ref = await releaseRef(forged);
    const envelope = await makeTestManifest(trust, {
      models: [{ name: 'demo', production: '1.0.0', rollout: null, releases: [ref] }],
    });
    const { keySet } = await verifyManifest(JSON.stringify(envelope), check);
    const document = releaseDocumentBytes(forged);
    expect(await rejectionCode(verifyReleaseDocument(document, { model: 'demo', ref }, keySet))).toBe(
      'E_PUBLISHER_SIGNATURE',
    );
  });

  it('rejects a manifest that points at a release it does not list', async () => {
    const envelope = await makeTestManifest(trust, {
      models: [
        {
          name: 'demo',
          production: '2.0.0',
          rollout: null,
          releases: [await releaseRef(await makeTestRelease(trust))],
        },
      ],
    });
    expect(await rejectionCode(verifyManifest(JSON.stringify(envelope), check))).toBe('E_MALFORMED');
  });

  it('carries excluded segments signed, bounded, and never "other" or "unknown"', async () => {
    const ref = await releaseRef(await makeTestRelease(trust));
    const next = await releaseRef(await makeTestRelease(trust, { version: '1.1.0' }));
    const withExcluded = (excludedSegments: unknown) =>
      manifestWithRollout({ shareBps: 5000, excludedSegments }, [ref, next]);
    const ok = await withExcluded([{ dimension: 'browser', value: 'firefox' }]);
    const { manifest } = await verifyManifest(JSON.stringify(ok), check);
    expect(manifest.models[0]!.rollout!.excludedSegments).toEqual([
      { dimension: 'browser', value: 'firefox' },
    ]);
    // The list is signed: a device cannot be talked out of (or into) an exclusion in transit.
    const stripped = structuredClone(ok);
    delete (stripped.signed.models[0]!.rollout as { excludedSegments?: unknown }).excludedSegments;
    expect(await rejectionCode(verifyManifest(JSON.stringify(stripped), check))).toBe('E_SIGNATURE');
    const tooMany = Array.from({ length: 9 }, (_, i) => ({
      dimension: 'browserVersion',
      value: `chrome-${i}`,
    }));
    for (const bad of [
      tooMany,
      [],
      [{ dimension: 'browser', value: 'other' }],
      [{ dimension: 'os', value: 'unknown' }],
      [{ dimension: 'gpu', value: 'nvidia' }],
      [{ dimension: 'browser', value: 'Firefox' }],
      [{ dimension: 'browser', value: 'firefox', extra: 1 }],
    ]) {
      expect(await rejectionCode(verifyManifest(JSON.stringify(await withExcluded(bad)), check))).toBe(
        'E_MALFORMED',
      );
    }
  });

  it('carries treatment arms signed, bounded, and consistent with the rollout they split', async () => {
    const refs: ReleaseRef[] = [];
    for (const version of ['1.0.0', '1.1.0', '1.2.0', '1.3.0'])
      refs.push(await releaseRef(await makeTestRelease(trust, { version })));
    const withArms = (rollout: Record<string, unknown>, releases = refs) =>
      manifestWithRollout(
        {
          shareBps: 6000,
          arms: [
            { release: '1.1.0', shareBps: 3000 },
            { release: '1.2.0', shareBps: 3000 },
          ],
          ...rollout,
        },
        releases,
      );
    const ok = await withArms({});
    const { manifest } = await verifyManifest(JSON.stringify(ok), check);
    expect(manifest.models[0]!.rollout!.arms!.map((a) => a.release)).toEqual(['1.1.0', '1.2.0']);
    // Signed: a device cannot be moved to another arm in transit.
    const moved = structuredClone(ok);
    moved.signed.models[0]!.rollout!.arms![1]!.release = '1.3.0';
    expect(await rejectionCode(verifyManifest(JSON.stringify(moved), check))).toBe('E_SIGNATURE');
    const arm = (release: string, shareBps = 2000) => ({ release, shareBps });
    for (const bad of [
      { shareBps: 5000 }, // the arms' shares sum to 6000
      { arms: [arm('1.2.0', 3000), arm('1.1.0', 3000)] }, // the first arm is not `release`
      { arms: [arm('1.1.0', 3000), arm('1.1.0', 3000)] }, // one release twice
      { arms: [arm('1.1.0', 3000), arm('1.0.0', 3000)] }, // the control as a treatment
      { arms: [arm('1.1.0', 6000)] }, // one arm: the layout without arms
      { shareBps: 10_000, arms: ['1.1.0', '1.2.0', '1.3.0', '1.4.0', '1.5.0'].map((v) => arm(v)) },
      { mode: 'shadow' },
      { arms: [arm('1.1.0', 3000), { ...arm('1.2.0', 3000), extra: 1 }] },
    ]) {
      expect(await rejectionCode(verifyManifest(JSON.stringify(await withArms(bad)), check))).toBe(
        'E_MALFORMED',
      );
    }
    // Every arm's release must be listed, as production and the rollout's are.
    const unlisted = await withArms({}, [refs[0]!, refs[1]!]);
    expect(await rejectionCode(verifyManifest(JSON.stringify(unlisted), check))).toBe('E_MALFORMED');
  });

  it('accepts an online key rotated in by a newer key set, and refuses the retired key and old key set', async () => {
    const newOnline = await generateSigningKey();
    const rotated = await signKeySet(
      { ...trust.keySet.signed, version: 2, onlineKeys: [publicEntry(newOnline)] },
      [trust.root],
    );
    const base = await makeTestManifest(trust, { version: 5 });
    const byNewKey = await signManifest(base.signed, [newOnline], rotated);
    const { keySet } = await verifyManifest(JSON.stringify(byNewKey), { ...check, minKeySetVersion: 1 });
    expect(keySet.version).toBe(2);

    const byRetiredKey = await signManifest(base.signed, [trust.online], rotated);
    expect(await rejectionCode(verifyManifest(JSON.stringify(byRetiredKey), check))).toBe('E_UNKNOWN_KEY');

    // Replaying the old key set would bring the retired key back.
    expect(await rejectionCode(verifyManifest(JSON.stringify(base), { ...check, minKeySetVersion: 2 }))).toBe(
      'E_ROLLBACK',
    );
  });

  it('rejects an expired key set', async () => {
    const stale = await signKeySet(
      {
        ...trust.keySet.signed,
        issuedAt: new Date(Date.now() - 48 * HOUR).toISOString(),
        expiresAt: new Date(Date.now() - HOUR).toISOString(),
      },
      [trust.root],
    );
    const envelope = { ...(await makeTestManifest(trust)), keySet: stale };
    expect(await rejectionCode(verifyManifest(JSON.stringify(envelope), check))).toBe('E_EXPIRED');
  });

  it('requires as many root signatures as the pinned threshold', async () => {
    const envelope = await makeTestManifest(trust);
    const secondRoot = await generateSigningKey();
    const root = { keys: [...trust.trustedRoot.keys, publicEntry(secondRoot)], threshold: 2 };
    expect(await rejectionCode(verifyManifest(JSON.stringify(envelope), { ...check, root }))).toBe(
      'E_SIGNATURE',
    );
  });

  it('rejects text that is not a manifest', async () => {
    expect(await rejectionCode(verifyManifest('not json', check))).toBe('E_MALFORMED');
    expect(await rejectionCode(verifyManifest('{"signed":{}}', check))).toBe('E_MALFORMED');
    expect(await rejectionCode(verifyManifest(`"${'x'.repeat(1024 * 1024 + 1)}"`, check))).toBe(
      'E_MALFORMED',
    );
  });

  it('forgets a fast-forwarded version once a new key set rotates its signer out (TUF 5.3.11)', async () => {
    // A stolen online key signs the highest version there is; the device accepts it.
    const frozen = await makeTestManifest(trust, { version: Number.MAX_SAFE_INTEGER });
    const { trusted } = await verifyManifest(JSON.stringify(frozen), check);
    const next = await makeTestManifest(trust, { version: 43 });
    expect(await rejectionCode(verifyManifest(JSON.stringify(next), { ...check, trusted }))).toBe(
      'E_ROLLBACK',
    );

    // A key set that keeps the signer keeps the floor...
    const spare = await generateSigningKey();
    const widened = await signKeySet(
      { ...trust.keySet.signed, version: 2, onlineKeys: [publicEntry(trust.online), publicEntry(spare)] },
      [trust.root],
    );
    const underWidened = await signManifest(next.signed, [trust.online], widened);
    expect(await rejectionCode(verifyManifest(JSON.stringify(underWidened), { ...check, trusted }))).toBe(
      'E_ROLLBACK',
    );
    // ...one that replaces it resets it: the recovered server's version 43 is accepted.
    const replaced = await signKeySet(
      { ...trust.keySet.signed, version: 3, onlineKeys: [publicEntry(spare)] },
      [trust.root],
    );
    const recovered = await signManifest(next.signed, [spare], replaced);
    const after = await verifyManifest(JSON.stringify(recovered), { ...check, trusted, minKeySetVersion: 2 });
    expect(after.trusted.version).toBe(43);
    expect(after.trusted.signers).toEqual([spare.publicKey]);
  });

  it('refuses a different document at a version already accepted, and accepts the same one', async () => {
    const first = await makeTestManifest(trust, { version: 7 });
    const { trusted } = await verifyManifest(JSON.stringify(first), check);
    await expect(verifyManifest(JSON.stringify(first), { ...check, trusted })).resolves.toBeTruthy();
    const other = await makeTestManifest(trust, { version: 7, models: [] });
    expect(await rejectionCode(verifyManifest(JSON.stringify(other), { ...check, trusted }))).toBe(
      'E_VERSION_CONFLICT',
    );
  });

  it("caps a manifest's lifetime at what its key set declares, and refuses one issued in the future", async () => {
    const now = check.now.getTime();
    const forever = await makeTestManifest(trust, { expiresAt: '9999-12-31T00:00:00.000Z' });
    expect(await rejectionCode(verifyManifest(JSON.stringify(forever), check))).toBe('E_LIFETIME');
    // Dodging the cap with a far issuedAt is refused too.
    const ahead = await makeTestManifest(trust, {
      issuedAt: '9999-12-30T00:00:00.000Z',
      expiresAt: '9999-12-31T00:00:00.000Z',
    });
    expect(await rejectionCode(verifyManifest(JSON.stringify(ahead), check))).toBe('E_LIFETIME');
    // A key set declaring one hour: a day-long manifest is refused, a 30-minute one accepted.
    const strict = await signKeySet({ ...trust.keySet.signed, maxManifestLifetimeSeconds: 3600 }, [
      trust.root,
    ]);
    const day = await makeTestManifest(trust, {});
    const dayUnderStrict = await signManifest(day.signed, [trust.online], strict);
    expect(await rejectionCode(verifyManifest(JSON.stringify(dayUnderStrict), check))).toBe('E_LIFETIME');
    const short = await signManifest(
      {
        ...day.signed,
        issuedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + 30 * 60_000).toISOString(),
      },
      [trust.online],
      strict,
    );
    await expect(verifyManifest(JSON.stringify(short), check)).resolves.toBeTruthy();
  });

  it("enforces the key set's own root threshold with distinct root keys", async () => {
    const secondRoot = await generateSigningKey();
    const root = { keys: [...trust.trustedRoot.keys, publicEntry(secondRoot)], threshold: 1 };
    const demanding = { ...trust.keySet.signed, threshold: { root: 2, manifest: 1, release: 1 } };
    const oneSignature = await signKeySet(demanding, [trust.root]);
    const envelope = await makeTestManifest(trust);
    const withOne = { ...envelope, keySet: oneSignature };
    expect(await rejectionCode(verifyManifest(JSON.stringify(withOne), { ...check, root }))).toBe(
      'E_SIGNATURE',
    );
    // The same root key signing twice is still one key.
    const twice = { ...oneSignature, signatures: [...oneSignature.signatures, ...oneSignature.signatures] };
    expect(
      await rejectionCode(verifyManifest(JSON.stringify({ ...envelope, keySet: twice }), { ...check, root })),
    ).toBe('E_SIGNATURE');
    const both = await signKeySet(demanding, [trust.root, secondRoot]);
    await expect(
      verifyManifest(JSON.stringify({ ...envelope, keySet: both }), { ...check, root }),
    ).resolves.toBeTruthy();
  });

  it('counts one public key once, under however many key ids it is listed', async () => {
    const doc = { hello: 'world' };
    const signed = await signEnvelope(doc, [trust.online]);
    const alias = { keyId: 'f'.repeat(64), publicKey: trust.online.publicKey };
    const aliasSig = await signPayload(doc, { ...trust.online, keyId: alias.keyId });
    const envelope = { signed: doc, signatures: [...signed.signatures, aliasSig] };
    expect(await rejectionCode(verifyThreshold(envelope, [publicEntry(trust.online), alias], 2, 'doc'))).toBe(
      'E_SIGNATURE',
    );
    // Pinned that way, the app's root is refused outright: an id must be its key's hash.
    const root = {
      keys: [...trust.trustedRoot.keys, { ...alias, publicKey: trust.root.publicKey }],
      threshold: 2,
    };
    expect(
      await rejectionCode(verifyManifest(JSON.stringify(await makeTestManifest(trust)), { ...check, root })),
    ).toBe('E_MALFORMED');
  });

  it('refuses a key set whose thresholds its keys can never meet', async () => {
    const impossible = await signKeySet(
      { ...trust.keySet.signed, threshold: { root: 1, manifest: 2, release: 1 } },
      [trust.root],
    );
    const envelope = { ...(await makeTestManifest(trust)), keySet: impossible };
    expect(await rejectionCode(verifyManifest(JSON.stringify(envelope), check))).toBe('E_MALFORMED');
  });

  it('bounds the size in bytes, not characters', async () => {
    // 524,289 characters of "é": under the bound in UTF-16 units, over it in UTF-8 bytes.
    const wide = `"${'é'.repeat(512 * 1024)}"`;
    expect(wide.length).toBeLessThan(1024 * 1024);
    await expect(verifyManifest(wide, check)).rejects.toThrow(/larger than 1048576 bytes/);
    await expect(verifyManifest(new TextEncoder().encode(wide), check)).rejects.toThrow(
      /larger than 1048576 bytes/,
    );
    // Just under the bound in bytes: refused for what it is (not a manifest), not for its size.
    const narrow = `"${'é'.repeat(512 * 1024 - 2)}"`;
    await expect(verifyManifest(narrow, check)).rejects.toThrow(/^(?!.*larger than)/);
  });
});
