// One test per attack class of the TUF specification (1.0.34, section 1.5.2 "Goals to protect
// against specific attacks", plus slow retrieval, which the spec dropped in 2020 as an
// implementation matter), each against the real code: a real update server on loopback (SQLite,
// its own keys), an attacker's mirror in front of it (test/support/attacker-mirror.ts), real
// Ed25519 signatures, and the runtime's trust store, updater and fetcher. The device's IndexedDB
// is fake-indexeddb here; the same store runs on Chromium's IndexedDB in runtime/.
import 'fake-indexeddb/auto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  canonicalJson,
  generateSigningKey,
  type KeySet,
  MANIFEST_SCHEMA_VERSION,
  type ManifestEnvelope,
  publicEntry,
  releaseDocumentBytes,
  releaseRef,
  type SignedRelease,
  SignedReleaseSchema,
  type SigningKeyPair,
  seededBytes,
  signKeySet,
  signManifest,
  signRelease,
  type TrustedRoot,
} from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelStore } from '../runtime/src/store/model-store.ts';
import { TrustStore } from '../runtime/src/update/trust-store.ts';
import { Updater, type UpdaterConfig } from '../runtime/src/update/updater.ts';
import { RUNTIME_VERSION } from '../runtime/src/version.ts';
import { AttackerMirror, drip, endless, hang, serveManifest } from './support/attacker-mirror.ts';
import { rejectionCode } from './support/rejection.ts';
import { publish, startTestServer, type TestServer } from './support/server.ts';
import { createTestTrust, HOUR, testRelease } from './support/trust.ts';

const APP = 'demo-app';
const DAY = 24 * HOUR;
const rateLimits = { publicPerMinute: 100_000, adminPerMinute: 100_000 };

let t: TestServer;
let mirror: AttackerMirror;
let v1: SignedRelease;
let v11: SignedRelease;
const v1Bytes = seededBytes(3000, 1);
const v11Bytes = seededBytes(3000, 2);

beforeAll(async () => {
  t = await startTestServer({ rateLimits });
  v1 = await publish(t, v1Bytes, { version: '1.0.0' });
  v11 = await publish(t, v11Bytes, { version: '1.1.0' });
  mirror = new AttackerMirror(t.server.url);
  await mirror.start();
});

afterAll(async () => {
  await mirror?.stop();
  await t?.stop();
});

let devices = 0;

/** A device of `channel`: its own IndexedDB, trust store and updater, talking to `server`. */
async function device(
  channel: string,
  config: Partial<UpdaterConfig> & { root?: TrustedRoot; db?: string } = {},
) {
  const { root = t.server.trustedRoot, db = `tuf-device-${devices++}`, ...rest } = config;
  const store = await ModelStore.open(db);
  const trust = new TrustStore(store, root, { app: APP, channel });
  const updater = new Updater(store, trust, {
    server: mirror.url,
    app: APP,
    channel,
    deviceId: `device-${devices}`,
    runtimeVersion: RUNTIME_VERSION,
    models: ['demo'], // the device uses the model these tests publish
    ...rest,
  });
  return { store, trust, updater, db };
}

/** The manifest the real server serves for `channel` now. */
async function served(channel: string): Promise<string> {
  const response = await fetch(`${t.server.url}/v1/apps/${APP}/channels/${channel}/manifest`);
  expect(response.status).toBe(200);
  return response.text();
}

/** A device on `channel`, whose production is demo 1.0.0, before any check. */
async function freshDevice(channel: string, config: Parameters<typeof device>[1] = {}) {
  await t.operator.promoteRelease(APP, channel, 'demo', '1.0.0');
  return device(channel, config);
}

/** A device on `channel`, whose production is demo 1.0.0, after one honest check; and that manifest. */
async function checkedDevice(channel: string) {
  const d = await freshDevice(channel);
  const manifest = await served(channel);
  await d.updater.check();
  return { d, manifest };
}

/** What a thief of the server's online key can sign: anything, under the real key set. */
async function signedByStolenOnlineKey(text: string, edit: (e: ManifestEnvelope) => void): Promise<string> {
  const envelope = JSON.parse(text) as ManifestEnvelope;
  edit(envelope);
  return canonicalJson(await signManifest(envelope.signed, [t.server.keys.online], envelope.keySet));
}

const chunkPaths = () => mirror.log.filter((e) => e.path.startsWith('/v1/chunks/'));

describe('TUF attack classes, against the real server, mirror and runtime', () => {
  it('arbitrary software installation: a foreign trust chain and tampered bytes install nothing', async () => {
    await t.operator.promoteRelease(APP, 'arbitrary', 'demo', '1.0.0');
    // The attacker's own root, online and publisher keys: every signature is valid, none chains
    // to the root the app pins.
    const foreign = await createTestTrust();
    const theirs = await signRelease(await testRelease({ 'model.onnx': seededBytes(3000, 66) }), [
      foreign.publisher,
    ]);
    const forged = await signManifest(
      {
        type: 'edgeship/manifest',
        schemaVersion: MANIFEST_SCHEMA_VERSION,
        app: APP,
        channel: 'arbitrary',
        version: 1_000,
        issuedAt: new Date().toISOString(),
        expiresAt: new Date(Date.now() + DAY).toISOString(),
        models: [{ name: 'demo', production: '1.0.0', rollout: null, releases: [await releaseRef(theirs)] }],
      },
      [foreign.online],
      foreign.keySet,
    );
    const d = await device('arbitrary');
    mirror.manifest = serveManifest(canonicalJson(forged));
    mirror.log = [];
    expect(await rejectionCode(d.updater.check())).toBe('E_UNKNOWN_KEY');
    expect(chunkPaths()).toEqual([]);

    // The real manifest, but the mirror flips a byte of the model on the way.
    mirror.manifest = null;
    mirror.chunk = async (_req, res, upstream) => {
      const answer = await upstream();
      const body = answer.body.slice();
      body[100]! ^= 0xff;
      res.writeHead(200, { 'content-length': String(body.length) });
      res.end(body);
    };
    const result = await d.updater.check();
    expect(result.failures).toEqual([expect.objectContaining({ release: 'demo@1.0.0', code: 'E_HASH' })]);
    expect((await d.store.pointers('demo')).pending).toBeNull();
    expect((await d.store.getRelease('demo@1.0.0'))?.complete).not.toBe(true);
    mirror.honest();
  });

  it('rollback: a replayed older manifest is refused, after a reload too', async () => {
    const { d, manifest: older } = await checkedDevice('rollback');
    await t.operator.promoteRelease(APP, 'rollback', 'demo', '1.1.0');
    expect((await d.updater.check()).targets.demo?.active).toBe('demo@1.1.0');

    mirror.manifest = serveManifest(older);
    expect(await rejectionCode(d.updater.check())).toBe('E_ROLLBACK');
    // A reload: a new trust store and updater over the same IndexedDB remember the version.
    const reloaded = await device('rollback', { db: d.db });
    expect(await rejectionCode(reloaded.updater.check())).toBe('E_ROLLBACK');
    mirror.honest();
  });

  it('indefinite freeze: a withheld update ends at expiry, and no key may sign for ever', async () => {
    const { d, manifest: newest } = await checkedDevice('freeze');
    // The mirror keeps answering "not modified" (or the same bytes): past the manifest's expiry
    // (the server signs for 7 days) the device refuses it and says so.
    const later = new Date(Date.now() + 8 * DAY);
    mirror.manifest = (_req, res) => void res.writeHead(304).end();
    expect(await rejectionCode(d.updater.check(later))).toBe('E_EXPIRED');
    mirror.manifest = serveManifest(newest);
    expect(await rejectionCode(d.updater.check(later))).toBe('E_EXPIRED');

    // A thief of the online key cannot sign a manifest that outlives the key set's cap.
    const forever = await signedByStolenOnlineKey(newest, (e) => {
      e.signed.version += 1;
      e.signed.expiresAt = '9999-12-31T00:00:00.000Z';
    });
    mirror.manifest = serveManifest(forever);
    expect(await rejectionCode(d.updater.check())).toBe('E_LIFETIME');
    mirror.honest();
  });

  it('endless data: an endless manifest and an endless chunk are cut at their bounds', async () => {
    const d = await freshDevice('endless');
    mirror.manifest = (_req, res) => endless(res);
    mirror.log = [];
    expect(await rejectionCode(d.updater.check())).toBe('E_LENGTH');
    // Cut at the 1 MiB cap: what the mirror managed to write is bounded by socket buffers.
    expect(mirror.log[0]!.bytes).toBeLessThan(16 * 1024 * 1024);

    mirror.manifest = null;
    mirror.chunk = (_req, res) => endless(res, 'application/octet-stream');
    const result = await d.updater.check();
    expect(result.failures).toEqual([expect.objectContaining({ code: 'E_LENGTH' })]);
    mirror.honest();
  });

  it('slow retrieval: a chunk drip-fed a byte every 250 ms is refused at its size-based deadline', async () => {
    // The stall timer (1 s) alone would never fire: a byte arrives every 250 ms. The chunk's
    // deadline (500 ms + 3000 B at the default 4 KiB/s, never re-armed) does.
    const d = await freshDevice('slow', { stallMs: 1000, firstByteMs: 500 });
    mirror.chunk = async (_req, res, upstream) => drip(res, (await upstream()).body, 250);
    mirror.log = [];
    const started = performance.now();
    const result = await d.updater.check();
    expect(result.failures).toEqual([expect.objectContaining({ release: 'demo@1.0.0', code: 'E_STALLED' })]);
    // Three attempts of about 1.2 s each, not the 750 s the drip would take.
    expect(performance.now() - started).toBeLessThan(20_000);
    for (const attempt of chunkPaths()) expect(attempt.bytes).toBeLessThan(20);

    // Headers, then nothing: with a 60 s stall timer, the first-byte allowance ends it.
    mirror.chunk = (_req, res) => hang(res);
    const held = await device('slow', { stallMs: 60_000, firstByteMs: 500 });
    const heldStart = performance.now();
    expect((await held.updater.check()).failures).toEqual([expect.objectContaining({ code: 'E_STALLED' })]);
    expect(performance.now() - heldStart).toBeLessThan(20_000);

    // The manifest's deadline covers its body, not only the headers.
    mirror.chunk = null;
    mirror.manifest = async (_req, res, upstream) => drip(res, (await upstream()).body, 250);
    const slowManifest = await device('slow', { timeoutMs: 1000 });
    expect(await rejectionCode(slowManifest.updater.check())).toBe('E_STALLED');
    mirror.honest();
  }, 60_000);

  it('slow retrieval: a dead check is abandoned at its deadline, so the next check brings the halt', async () => {
    await t.operator.promoteRelease(APP, 'halt', 'demo', '1.0.0');
    const rollout = await t.operator.createRollout({
      app: APP,
      channel: 'halt',
      model: 'demo',
      release: '1.1.0',
      shareBps: 10_000,
    });
    // A download that never settles whatever its abort signal says: the worst a network stack
    // can do. Only the whole-check deadline can end this check.
    let dead = true;
    const deadFetch: typeof fetch = (input, init) =>
      dead && String(input).includes('/v1/chunks/') ? new Promise(() => {}) : fetch(input, init);
    const d = await device('halt', { fetch: deadFetch, checkDeadlineMs: 1500 });
    const started = performance.now();
    expect(await rejectionCode(d.updater.check())).toBe('E_STALLED');
    expect(performance.now() - started).toBeLessThan(5_000);

    // The canary is halted meanwhile; the runtime's single-flight check was released when the
    // dead one settled, so the next check runs and brings the device back to production.
    await t.operator.halt(rollout.id, 'regression');
    dead = false;
    const next = await d.updater.check();
    expect(next.targets.demo).toMatchObject({ active: 'demo@1.0.0', inRollout: false });
    expect((await d.store.pointers('demo')).pending).toBe('demo@1.0.0');
  });

  it('extraneous dependencies: releases have no dependencies, and only the chosen chunks are fetched', async () => {
    // Does not apply as such: nothing in a release names other software. The schema is strict,
    // so a release that tried would not parse...
    const withDependency = { ...v1, signed: { ...v1.signed, dependencies: ['evil@1.0.0'] } };
    expect(SignedReleaseSchema.safeParse(withDependency).success).toBe(false);
    // ...and a device fetches exactly the chunks of the publisher-signed release it runs.
    const d = await freshDevice('deps');
    mirror.log = [];
    await d.updater.check();
    const fetched = chunkPaths().map((e) => e.path.slice('/v1/chunks/'.length));
    expect(new Set(fetched)).toEqual(new Set(v1.signed.files.flatMap((f) => f.chunks.map((c) => c.sha256))));
  });

  it('mix-and-match: documents spliced together, or forked under one version, are refused', async () => {
    const { d, manifest: text } = await checkedDevice('mix');
    // One signature covers every release a manifest offers: splicing in another is a forgery.
    const spliced = JSON.parse(text) as ManifestEnvelope;
    spliced.signed.models[0]!.releases = [await releaseRef(v11)];
    spliced.signed.models[0]!.production = '1.1.0';
    spliced.signed.version += 1;
    mirror.manifest = serveManifest(canonicalJson(spliced));
    expect(await rejectionCode(d.updater.check())).toBe('E_SIGNATURE');
    // The online key signing a second, different document under the accepted version: a fork.
    const v11Ref = await releaseRef(v11);
    const fork = await signedByStolenOnlineKey(text, (e) => {
      e.signed.models[0]!.releases = [v11Ref];
      e.signed.models[0]!.production = '1.1.0';
    });
    mirror.manifest = serveManifest(fork);
    expect(await rejectionCode(d.updater.check())).toBe('E_VERSION_CONFLICT');
    mirror.honest();
  });

  it('mix-and-match: a swapped release document is refused before any chunk is fetched', async () => {
    // The manifest names each release by its document's hash; the mirror answers that request
    // with another genuine, publisher-signed document (v1.1.0's for v1.0.0's).
    const d = await freshDevice('swap');
    const other = releaseDocumentBytes(v11);
    mirror.releaseDocument = (_req, res) => void res.writeHead(200).end(other);
    mirror.log = [];
    let result = await d.updater.check();
    expect(result.failures).toEqual([expect.objectContaining({ release: 'demo@1.0.0', code: 'E_HASH' })]);
    expect(chunkPaths()).toEqual([]);
    expect((await d.store.pointers('demo')).pending).toBeNull();
    // An endless document is cut at the length the manifest gives.
    mirror.releaseDocument = (_req, res) => endless(res);
    result = await d.updater.check();
    expect(result.failures).toEqual([expect.objectContaining({ release: 'demo@1.0.0', code: 'E_LENGTH' })]);
    // The honest document installs: the refusals left nothing behind that blocks it.
    mirror.honest();
    expect((await d.updater.check()).downloaded).toEqual(['demo@1.0.0']);

    // A stolen online key can name v1.1.0's genuine document as 1.0.0: hash and signature hold,
    // but the document is not the release the manifest names.
    const v11Ref = await releaseRef(v11);
    mirror.manifest = serveManifest(
      await signedByStolenOnlineKey(await served('swap'), (e) => {
        e.signed.version += 1;
        e.signed.models[0]!.releases = [{ ...v11Ref, version: '1.0.0' }];
      }),
    );
    const fresh = await device('swap');
    mirror.log = [];
    expect((await fresh.updater.check()).failures).toEqual([
      expect.objectContaining({ release: 'demo@1.0.0', code: 'E_WRONG_TARGET' }),
    ]);
    expect(chunkPaths()).toEqual([]);
    mirror.honest();
  });

  it('malicious mirrors preventing updates: refused answers leave nothing that blocks a good one', async () => {
    // Edgeship has one origin, not a mirror list; what applies is the spec's rule that a failed
    // step "should not leave clients in an unrecoverable state".
    const d = await freshDevice('mirrors');
    const tampered = (await served('mirrors')).replace('"production":"1.0.0"', '"production":null');
    mirror.manifest = serveManifest(tampered, '"evil-etag"');
    expect(await rejectionCode(d.updater.check())).toBe('E_SIGNATURE');
    mirror.manifest = serveManifest('{"not":"a manifest"}', '"evil-etag"');
    expect(await rejectionCode(d.updater.check())).toBe('E_MALFORMED');
    mirror.manifest = null;
    mirror.chunk = (_req, res) => void res.writeHead(200).end(seededBytes(3000, 5));
    expect((await d.updater.check()).failures).toEqual([expect.objectContaining({ code: 'E_HASH' })]);

    mirror.honest();
    mirror.log = [];
    const good = await d.updater.check();
    expect(good.downloaded).toEqual(['demo@1.0.0']);
    expect((await d.store.pointers('demo')).pending).toBe('demo@1.0.0');
    // The refused manifests' ETag was never remembered.
    expect(mirror.log.find((e) => e.path.endsWith('/manifest'))?.ifNoneMatch).not.toBe('"evil-etag"');
  });

  it('key compromise: fewer keys than any role’s threshold, counted as distinct keys, install nothing', async () => {
    // A trust chain of two keys per role, each threshold 2: one stolen key of any role is not enough.
    const keys = async () => [await generateSigningKey(), await generateSigningKey()] as const;
    const [rootA, rootB] = await keys();
    const [onlineA, onlineB] = await keys();
    const [pubA, pubB] = await keys();
    const root: TrustedRoot = { keys: [publicEntry(rootA), publicEntry(rootB)], threshold: 2 };
    const body: KeySet = {
      type: 'edgeship/keyset',
      version: 1,
      issuedAt: new Date(Date.now() - HOUR).toISOString(),
      expiresAt: new Date(Date.now() + 30 * DAY).toISOString(),
      threshold: { root: 2, manifest: 2, release: 2 },
      onlineKeys: [publicEntry(onlineA), publicEntry(onlineB)],
      publisherKeys: [publicEntry(pubA), publicEntry(pubB)],
    };
    const bytes = seededBytes(3000, 7);
    const release = await testRelease({ 'model.onnx': bytes });
    let version = 0;
    // This test's own trust chain: the mirror serves the release documents its manifests name.
    const documents = new Map<string, Uint8Array>();
    const signedRef = async (pubs: SigningKeyPair[]) => {
      const signed = await signRelease(release, pubs);
      const ref = await releaseRef(signed);
      documents.set(ref.sha256, releaseDocumentBytes(signed));
      return ref;
    };
    const manifest = async (opts: {
      roots: SigningKeyPair[];
      online: SigningKeyPair[];
      pubs: SigningKeyPair[];
    }) =>
      canonicalJson(
        await signManifest(
          {
            type: 'edgeship/manifest',
            schemaVersion: MANIFEST_SCHEMA_VERSION,
            app: APP,
            channel: 'keys',
            version: ++version,
            issuedAt: new Date().toISOString(),
            expiresAt: new Date(Date.now() + DAY).toISOString(),
            models: [
              {
                name: 'demo',
                production: '1.0.0',
                rollout: null,
                releases: [await signedRef(opts.pubs)],
              },
            ],
          },
          opts.online,
          await signKeySet(body, opts.roots),
        ),
      );
    const all = { roots: [rootA, rootB], online: [onlineA, onlineB], pubs: [pubA, pubB] };
    const d = await device('keys', { root });
    mirror.chunk = (_req, res) => void res.writeHead(200).end(bytes);
    mirror.releaseDocument = (req, res) =>
      void res.writeHead(200).end(documents.get(req.url!.slice('/v1/releases/by-hash/'.length)));

    mirror.manifest = serveManifest(await manifest({ ...all, roots: [rootA] }));
    expect(await rejectionCode(d.updater.check())).toBe('E_SIGNATURE');
    mirror.manifest = serveManifest(await manifest({ ...all, online: [onlineA] }));
    expect(await rejectionCode(d.updater.check())).toBe('E_SIGNATURE');
    // One stolen key signing twice is still one key.
    mirror.manifest = serveManifest(await manifest({ ...all, online: [onlineA, onlineA] }));
    expect(await rejectionCode(d.updater.check())).toBe('E_SIGNATURE');
    // Both online keys stolen (the server's), one publisher key: still no release of theirs. The
    // manifest is genuine; the release document it names fails before any chunk is fetched.
    mirror.log = [];
    mirror.manifest = serveManifest(await manifest({ ...all, pubs: [pubA] }));
    expect((await d.updater.check()).failures).toEqual([
      expect.objectContaining({ release: 'demo@1.0.0', code: 'E_PUBLISHER_SIGNATURE' }),
    ]);
    mirror.manifest = serveManifest(await manifest({ ...all, pubs: [onlineA, onlineB] }));
    expect((await d.updater.check()).failures).toEqual([
      expect.objectContaining({ release: 'demo@1.0.0', code: 'E_PUBLISHER_SIGNATURE' }),
    ]);
    expect(chunkPaths()).toEqual([]);
    // An app that pins the roots at threshold 1: the key set's own root threshold (2) still holds.
    const lenient = await device('keys', { root: { ...root, threshold: 1 } });
    mirror.manifest = serveManifest(await manifest({ ...all, roots: [rootA] }));
    expect(await rejectionCode(lenient.updater.check())).toBe('E_SIGNATURE');
    // One root key pinned under two ids does not make two keys.
    const aliased: TrustedRoot = {
      keys: [publicEntry(rootA), { keyId: rootB.keyId, publicKey: rootA.publicKey }],
      threshold: 2,
    };
    const twiceSigned = JSON.parse(await manifest({ ...all, roots: [rootA] })) as ManifestEnvelope;
    const [rootSig] = twiceSigned.keySet.signatures;
    twiceSigned.keySet.signatures.push({ keyId: rootB.keyId, sig: rootSig!.sig });
    mirror.manifest = serveManifest(canonicalJson(twiceSigned));
    const fooled = await device('keys', { root: aliased });
    expect(await rejectionCode(fooled.updater.check())).toBe('E_MALFORMED');
    // Every threshold met: accepted, so the refusals above are the thresholds' doing.
    mirror.manifest = serveManifest(await manifest(all));
    expect((await d.updater.check()).downloaded).toEqual(['demo@1.0.0']);
    mirror.honest();
  });

  it('wrong software installation: another channel’s manifest and another model’s bytes are refused', async () => {
    await t.operator.promoteRelease(APP, 'wrong', 'demo', '1.0.0');
    await t.operator.promoteRelease(APP, 'wrong-beta', 'demo', '1.1.0');
    const d = await device('wrong');
    // A genuine manifest, signed by the real online key, for another channel.
    mirror.manifest = serveManifest(await served('wrong-beta'));
    expect(await rejectionCode(d.updater.check())).toBe('E_WRONG_TARGET');
    // Genuine bytes of another release (same size) in place of this one's chunk.
    mirror.manifest = null;
    mirror.chunk = (_req, res) => void res.writeHead(200).end(v11Bytes);
    expect((await d.updater.check()).failures).toEqual([
      expect.objectContaining({ release: 'demo@1.0.0', code: 'E_HASH' }),
    ]);
    mirror.honest();
  });
});

describe('fast-forward, and recovery by rotating the online key (TUF 5.3.11)', () => {
  it('a version pushed to 2^53-1 with a stolen online key freezes the device until the root rotates that key', async () => {
    const ff = await startTestServer({ rateLimits });
    const ffMirror = new AttackerMirror(ff.server.url);
    await ffMirror.start();
    const dataDir = ff.dataDir;
    let restarted: TestServer | null = null;
    let stopped = false;
    try {
      await publish(ff, v1Bytes, { version: '1.0.0' });
      await publish(ff, v11Bytes, { version: '1.1.0' });
      await ff.operator.promoteRelease(APP, 'stable', 'demo', '1.0.0');
      const store = await ModelStore.open(`tuf-ff-${devices++}`);
      const updater = new Updater(
        store,
        new TrustStore(store, ff.server.trustedRoot, { app: APP, channel: 'stable' }),
        {
          server: ffMirror.url,
          app: APP,
          channel: 'stable',
          deviceId: 'ff-device',
          runtimeVersion: RUNTIME_VERSION,
          models: ['demo'],
        },
      );
      const before = (await updater.check()).manifestVersion!;

      // The thief of the online key signs the highest version there is; the device takes it.
      const real = await (await fetch(`${ff.server.url}/v1/apps/${APP}/channels/stable/manifest`)).text();
      const envelope = JSON.parse(real) as ManifestEnvelope;
      const forged = canonicalJson(
        await signManifest(
          { ...envelope.signed, version: Number.MAX_SAFE_INTEGER },
          [ff.server.keys.online],
          envelope.keySet,
        ),
      );
      ffMirror.manifest = serveManifest(forged);
      expect((await updater.check()).manifestVersion).toBe(Number.MAX_SAFE_INTEGER);
      ffMirror.honest();
      // Every genuine manifest from now on looks like a rollback: the device is frozen.
      await ff.operator.promoteRelease(APP, 'stable', 'demo', '1.1.0');
      expect(await rejectionCode(updater.check())).toBe('E_ROLLBACK');

      // Recovery: the root signs key set v2 with a new online key; the server restarts with it.
      const keysDir = join(dataDir, 'keys');
      const rootKey = JSON.parse(await readFile(join(keysDir, 'root.key.json'), 'utf8')) as SigningKeyPair;
      const newOnline = await generateSigningKey();
      const v2 = await signKeySet(
        {
          ...envelope.keySet.signed,
          version: 2,
          issuedAt: new Date().toISOString(),
          onlineKeys: [publicEntry(newOnline)],
        },
        [rootKey],
      );
      await ff.stop({ keepData: true });
      stopped = true;
      await writeFile(join(keysDir, 'keyset.json'), JSON.stringify(v2));
      await writeFile(join(keysDir, 'online.key.json'), JSON.stringify(newOnline));
      restarted = await startTestServer({ dataDir, rateLimits });
      ffMirror.target = restarted.server.url;
      // The next change is signed by the new key under key set v2: the stolen key's version no
      // longer counts, and the device updates again.
      await restarted.operator.rollback(APP, 'stable', 'demo', 'recovering from key compromise');
      const recovered = await updater.check();
      expect(recovered.manifestVersion).toBeGreaterThan(before);
      expect(recovered.manifestVersion).toBeLessThan(1_000);
      expect(recovered.targets.demo?.active).toBe('demo@1.0.0');

      // The forged manifest comes with key set v1, which the device will not go back to.
      ffMirror.manifest = serveManifest(forged);
      expect(await rejectionCode(updater.check())).toBe('E_ROLLBACK');
    } finally {
      await ffMirror.stop();
      await restarted?.stop();
      if (!stopped) await ff.stop({ keepData: true });
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
