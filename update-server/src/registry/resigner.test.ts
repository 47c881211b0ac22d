import { seededBytes } from '@edgeship/protocol';
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
