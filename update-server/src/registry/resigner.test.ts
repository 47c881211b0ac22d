import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  generateSigningKey,
  publicEntry,
  type SignedKeySet,
  type SigningKeyPair,
  seededBytes,
  signKeySet,
  verifyManifest,
} from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { ManifestResigner } from './resigner.ts';

// A short lifetime makes "past 40% of it" a wait of under a second; no request path runs meanwhile.
const TTL_MS = 2_000;
let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({ manifestTtlMs: TTL_MS, resignIntervalMs: 0 });
  await publish(t, seededBytes(50_000, 7), { model: 'kws', version: '1.0.0' });
  await t.operator.promoteRelease('app', 'stable', 'kws', '1.0.0');
});

afterAll(() => t.stop());

describe('ManifestResigner (the leader re-signs before expiry)', () => {
  it('re-signs a manifest past 40% of its lifetime once, as one new version, and leaves fresh ones', async () => {
    const { registry, service, log } = t.server;
    const resigner = new ManifestResigner(registry, service, log, { intervalMs: 0 });
    const first = (await registry.latestManifest('app', 'stable'))!;
    expect(await resigner.runOnce()).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, TTL_MS * 0.4 + 100));
    // Two at once (two leaders overlapping) still make one version: the channel lock decides.
    const other = new ManifestResigner(registry, service, log, { intervalMs: 0 });
    await Promise.all([resigner.runOnce(), other.runOnce()]);
    const second = (await registry.latestManifest('app', 'stable'))!;
    expect(second.version).toBe(first.version + 1);
    expect(Date.parse(second.createdAt)).toBeGreaterThan(Date.parse(first.createdAt));
    expect(await resigner.runOnce()).toBe(0);
    expect((await registry.latestManifest('app', 'stable'))!.version).toBe(second.version);
  });
});

describe('after a key rotation', () => {
  it('re-signs every manifest under the new key set at once, and devices accept it', async () => {
    const dev = await startTestServer({ resignIntervalMs: 0 });
    const { dataDir } = dev;
    await publish(dev, seededBytes(40_000, 9), { model: 'kws', version: '1.0.0' });
    await dev.operator.promoteRelease('app', 'stable', 'kws', '1.0.0');
    const before = (await dev.server.registry.latestManifest('app', 'stable'))!;
    const trustedRoot = dev.server.trustedRoot;
    await dev.stop({ keepData: true });

    // What `edgeship keyset --keyset-version 2 --online new-online.key.json` writes: a new online
    // key certified by key set v2 (signed by the offline root), put in the keys directory.
    const keys = join(dataDir, 'keys');
    const root = JSON.parse(await readFile(join(keys, 'root.key.json'), 'utf8')) as SigningKeyPair;
    const old = JSON.parse(await readFile(join(keys, 'keyset.json'), 'utf8')) as SignedKeySet;
    const online = await generateSigningKey();
    const v2 = await signKeySet({ ...old.signed, version: 2, onlineKeys: [publicEntry(online)] }, [root]);
    await writeFile(join(keys, 'keyset.json'), JSON.stringify(v2));
    await writeFile(join(keys, 'online.key.json'), JSON.stringify(online));

    const rotated = await startTestServer({ dataDir, resignIntervalMs: 0 });
    try {
      const { registry, service, log } = rotated.server;
      expect(await new ManifestResigner(registry, service, log, { intervalMs: 0 }).runOnce()).toBe(1);
      const after = (await registry.latestManifest('app', 'stable'))!;
      expect(after.version).toBe(before.version + 1);
      const { manifest } = await verifyManifest(after.body, {
        root: trustedRoot,
        app: 'app',
        channel: 'stable',
        now: new Date(),
      });
      expect(manifest.models[0]?.production).toBe('1.0.0');
      expect(JSON.parse(after.body).keySet.signed.version).toBe(2);
      expect(JSON.parse(after.body).signatures.map((s: { keyId: string }) => s.keyId)).toEqual([
        online.keyId,
      ]);
    } finally {
      await rotated.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
