import { createHash } from 'node:crypto';
import {
  canonicalJson,
  type ManifestEnvelope,
  releaseDocumentBytes,
  seededBytes,
  signManifest,
  verifyManifest,
  verifyReleaseDocument,
} from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const IMMUTABLE = 'public, max-age=31536000, immutable';

// Release documents live in the blob store, which is files on SQLite and rows on PostgreSQL.
for (const database of ['SQLite', 'PostgreSQL'] as const)
  describe(`release documents by hash on ${database}`, () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer({ postgres: database === 'PostgreSQL' });
    });
    afterAll(async () => {
      await t?.stop();
    });

    const manifestOf = async (channel: string) => {
      const response = await fetch(`${t.server.url}/v1/apps/demo-app/channels/${channel}/manifest`);
      const text = await response.text();
      const check = { root: t.server.trustedRoot, app: 'demo-app', channel, now: new Date() };
      return { text, ...(await verifyManifest(text, check)) };
    };

    it('names each release by the hash of the document it serves, immutable and cacheable', async () => {
      const signed = await publish(t, seededBytes(300_000, 1), { model: 'doc', version: '1.0.0' });
      await t.operator.promoteRelease('demo-app', 'docs', 'doc', '1.0.0');
      const { manifest, keySet } = await manifestOf('docs');
      const ref = manifest.models[0]!.releases[0]!;
      expect(ref).toEqual({
        version: '1.0.0',
        sha256: sha256(releaseDocumentBytes(signed)),
        size: releaseDocumentBytes(signed).length,
      });
      const url = `${t.server.url}/v1/releases/by-hash/${ref.sha256}`;
      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toBe(IMMUTABLE);
      expect(response.headers.get('etag')).toBe(`"${ref.sha256}"`);
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      const bytes = new Uint8Array(await response.arrayBuffer());
      expect(await verifyReleaseDocument(bytes, { model: 'doc', ref }, keySet)).toEqual(signed);

      const cached = await fetch(url, { headers: { 'if-none-match': `"${ref.sha256}"` } });
      expect(cached.status).toBe(304);
      expect(await cached.text()).toBe('');
      const unknown = await fetch(`${t.server.url}/v1/releases/by-hash/${'0'.repeat(64)}`);
      expect(unknown.status).toBe(404);
      expect(await unknown.json()).toMatchObject({ error: { code: 'E_NOT_FOUND' } });
      const malformed = await fetch(`${t.server.url}/v1/releases/by-hash/not-a-hash`);
      expect(malformed.status).toBe(400);
    });

    it('keeps the manifest the same size whatever the model size', async () => {
      // 2 MB is 8 chunks on average, 20 MB about 80: inline chunk lists would differ by ~7 KB.
      await publish(t, seededBytes(2_000_000, 2), { model: 'small', version: '1.0.0' });
      await publish(t, seededBytes(20_000_000, 3), { model: 'large', version: '1.0.0' });
      await t.operator.promoteRelease('demo-app', 'small', 'small', '1.0.0');
      await t.operator.promoteRelease('demo-app', 'large', 'large', '1.0.0');
      const small = await manifestOf('small');
      const large = await manifestOf('large');
      const chunks = async (channel: string, model: string) => {
        const { manifest, keySet } = await manifestOf(channel);
        const ref = manifest.models[0]!.releases[0]!;
        const bytes = new Uint8Array(
          await (await fetch(`${t.server.url}/v1/releases/by-hash/${ref.sha256}`)).arrayBuffer(),
        );
        const release = await verifyReleaseDocument(bytes, { model, ref }, keySet);
        return release.signed.files[0]!.chunks.length;
      };
      expect(await chunks('large', 'large')).toBeGreaterThan(5 * (await chunks('small', 'small')));
      // Equal names in length, equal fields: only the document's size digits could differ.
      expect(Math.abs(large.text.length - small.text.length)).toBeLessThanOrEqual(2);
    });

    it('re-signs a manifest stored in the older schema before serving it', async () => {
      await publish(t, seededBytes(100_000, 4), { model: 'old', version: '1.0.0' });
      await t.operator.promoteRelease('demo-app', 'upgrade', 'old', '1.0.0');
      // Read from the database, not served: nothing is cached for this channel yet.
      const current = (await t.server.registry.latestManifest('demo-app', 'upgrade'))!;
      // A schema-1 manifest as an older server stored it: releases inline, no schemaVersion.
      const envelope = JSON.parse(current.body) as ManifestEnvelope;
      const { schemaVersion: _, ...older } = envelope.signed;
      const oldRelease = await t.viewer.getRelease('old', '1.0.0');
      const legacy = {
        ...older,
        version: current.version + 1,
        models: [{ ...older.models[0]!, releases: [oldRelease.signed] }],
      };
      const legacyBody = canonicalJson(
        await signManifest(legacy as never, [t.server.keys.online], envelope.keySet),
      );
      await t.server.registry.insertManifest({
        app: 'demo-app',
        channel: 'upgrade',
        version: legacy.version,
        body: legacyBody,
        etag: `"${sha256(new TextEncoder().encode(legacyBody)).slice(0, 40)}"`,
        createdAt: new Date().toISOString(),
      });
      const served = await manifestOf('upgrade');
      expect(served.manifest.version).toBe(legacy.version + 1);
      expect(served.manifest.schemaVersion).toBe(2);
      expect(served.manifest.models[0]!.releases[0]!.version).toBe('1.0.0');
    });
  });
