import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Manifest, type SigningKeyPair, seededBytes, verifyManifest } from '@edgeship/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { makeRelease } from '../../test/support/server.ts';
import { AdminClient } from './admin-client.ts';
import type { BootstrapTokens } from './auth/tokens.ts';
import { type ClusterBase, type ClusterProcess, processCluster } from './cluster/testing.ts';
import type { ServerKeys } from './keys/server-keys.ts';
import { openStorage } from './storage/open.ts';
import { closeStorage } from './storage/registry.suite.ts';

/**
 * Two real `edgeship-server` processes on one PostgreSQL schema, as behind a load balancer:
 * separate data directories, one shared keys directory, every byte and decision in the database.
 */

const APP = 'fleet';
const CHANNEL = 'stable';
const MODEL = 'kws';

interface Cluster extends ClusterBase {
  publisherKey: SigningKeyPair;
  a: ClusterProcess;
  b: ClusterProcess;
  tokens: BootstrapTokens;
}

const processes = processCluster();
let setup: Promise<Cluster> | undefined;

// Started by the first test (see processCluster).
function cluster(): Promise<Cluster> {
  setup ??= (async () => {
    const base = await processes.shared();
    // Together: both race to bootstrap the schema and the tokens.
    const [a, b] = await Promise.all([processes.start(), processes.start()]);
    const files = await Promise.all([a, b].map((p) => readTokens(join(p.dataDir, 'tokens.json'))));
    const found = files.filter((t): t is BootstrapTokens => t !== null);
    if (found.length !== 1)
      throw new Error(`expected one tokens.json across both data dirs, found ${found.length}`);
    return { ...base, publisherKey: base.keys.created!.publisher, a, b, tokens: found[0]! };
  })();
  return setup;
}

afterAll(() => processes.close());

describe('two server processes on one PostgreSQL', () => {
  it('start together and bootstrap exactly one set of tokens, valid on both', async () => {
    const { schema, a, b, tokens } = await cluster();
    const storage = await openStorage({ dataDir: a.dataDir, databaseUrl: schema.url });
    try {
      const stored = await storage.registry.listTokens();
      expect(stored.map((t) => `${t.name}:${t.role}`).sort()).toEqual([
        'bootstrap-admin:admin',
        'bootstrap-operator:operator',
        'bootstrap-publisher:publisher',
        'bootstrap-viewer:viewer',
      ]);
    } finally {
      await closeStorage(storage);
    }
    for (const p of [a, b]) {
      expect(await new AdminClient(p.url, tokens.viewer).whoami()).toMatchObject({ role: 'viewer' });
      expect(await new AdminClient(p.url, tokens.operator).whoami()).toMatchObject({ role: 'operator' });
    }
  });

  it('serve the same signed manifest bytes and ETag', async () => {
    const { a, b, tokens, keys } = await cluster();
    const { bytes, signed } = await publishThrough(a, '1.0.0', 31);
    await new AdminClient(a.url, tokens.operator).promoteRelease(APP, CHANNEL, MODEL, '1.0.0');

    const [fromA, fromB] = await Promise.all([fetchManifest(a), fetchManifest(b)]);
    expect(fromB.body).toBe(fromA.body);
    expect(fromB.etag).toBe(fromA.etag);
    expect(fromA.etag).toMatch(/^"[0-9a-f]{40}(-br|-gzip)?"$/);
    const manifest = await verified(fromB.body, keys);
    expect(manifest.models).toMatchObject([{ name: MODEL, production: '1.0.0', rollout: null }]);

    // B answers A's ETag with 304, and serves the chunks A took in.
    const revalidated = await fetch(manifestUrl(b), { headers: { 'if-none-match': fromA.etag } });
    expect(revalidated.status).toBe(304);
    const chunk = signed.signed.files[0]!.chunks[0]!;
    const response = await fetch(`${b.url}/v1/chunks/${chunk.sha256}`);
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer())).toEqual(Buffer.from(bytes.subarray(0, chunk.size)));
  });

  it('serve a rollout change made through one process from the other', async () => {
    const { a, b, tokens, keys } = await cluster();
    await publishThrough(b, '1.1.0', 32);
    const before = await verified((await fetchManifest(b)).body, keys);

    // Created through A, served by B.
    const rollout = await new AdminClient(a.url, tokens.operator).createRollout({
      app: APP,
      channel: CHANNEL,
      model: MODEL,
      release: '1.1.0',
      shareBps: 1000,
    });
    const afterCreate = (await servedWithinASecond(b, keys, before.version + 1)).manifest;
    expect(afterCreate.version).toBe(before.version + 1);
    expect(afterCreate.models[0]?.rollout).toEqual({
      id: rollout.id,
      release: '1.1.0',
      shareBps: 1000,
      salt: rollout.salt,
      control: '1.0.0',
      mode: 'canary',
    });

    // Widened through B, served by A.
    await new AdminClient(b.url, tokens.operator).setShare(rollout.id, 5000);
    const afterShare = (await servedWithinASecond(a, keys, before.version + 2)).manifest;
    expect(afterShare.version).toBe(before.version + 2);
    expect(afterShare.models[0]?.rollout?.shareBps).toBe(5000);

    // Halted through A: both stop serving the rollout, with identical bytes.
    await new AdminClient(a.url, tokens.operator).halt(rollout.id, 'multi-process test');
    const fromB = await servedWithinASecond(b, keys, before.version + 3);
    const fromA = await fetchManifest(a);
    expect(fromB.body).toBe(fromA.body);
    expect(fromB.etag).toBe(fromA.etag);
    const halted = fromB.manifest;
    expect(halted.version).toBe(before.version + 3);
    expect(halted.models[0]).toMatchObject({ production: '1.0.0', rollout: null });

    // The audit trail written through both processes is one trail.
    const { entries } = await new AdminClient(b.url, tokens.viewer).audit({ app: APP, limit: 10 });
    expect(entries.map((e) => e.action)).toEqual([
      'rollout.halt',
      'rollout.share',
      'rollout.create',
      'release.promote',
    ]);
  });
});

/** Publishes `version` of MODEL through `p` (chunks, then the release), as `edgeship publish` does. */
async function publishThrough(p: ClusterProcess, version: string, seed: number) {
  const { tokens, publisherKey } = await cluster();
  const bytes = seededBytes(300_000, seed);
  const signed = await makeRelease(publisherKey, bytes, { model: MODEL, version });
  const publisher = new AdminClient(p.url, tokens.publisher);
  await publisher.uploadRelease(signed, new Map([['model.onnx', bytes]]));
  await publisher.registerRelease({ release: signed });
  return { bytes, signed };
}

function manifestUrl(p: ClusterProcess): string {
  return `${p.url}/v1/apps/${APP}/channels/${CHANNEL}/manifest`;
}

async function fetchManifest(p: ClusterProcess): Promise<{ body: string; etag: string }> {
  const response = await fetch(manifestUrl(p));
  const body = await response.text();
  if (response.status !== 200) throw new Error(`${p.url} answered ${response.status}: ${body}`);
  return { body, etag: response.headers.get('etag') ?? '' };
}

/**
 * Each process serves its manifests from memory and notices another process's change within a
 * second (registry/manifest-cache.ts): poll for the expected version, and fail past that second.
 */
async function servedWithinASecond(p: ClusterProcess, keys: ServerKeys, version: number) {
  const started = Date.now();
  for (;;) {
    const served = await fetchManifest(p);
    const manifest = await verified(served.body, keys);
    if (manifest.version >= version) {
      expect(manifest.version).toBe(version);
      return { ...served, manifest };
    }
    if (Date.now() - started > 1000)
      throw new Error(`${p.url} still serves version ${manifest.version} after 1 s`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function verified(body: string, keys: ServerKeys): Promise<Manifest> {
  const { manifest } = await verifyManifest(body, {
    root: keys.trustedRoot,
    app: APP,
    channel: CHANNEL,
    now: new Date(),
  });
  return manifest;
}

async function readTokens(file: string): Promise<BootstrapTokens | null> {
  try {
    await access(file);
  } catch {
    return null;
  }
  return JSON.parse(await readFile(file, 'utf8')) as BootstrapTokens;
}
