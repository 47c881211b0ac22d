import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededBytes, verifyManifest } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { type RunningServer, startServer } from '../server.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const MANIFEST = '/v1/apps/demo-app/channels/stable/manifest';

// The same HTTP contract whichever blob store serves the chunk (files, or PostgreSQL rows).
for (const database of ['SQLite', 'PostgreSQL'] as const)
  describe(`serving manifests and chunks on ${database}`, () => {
    let t: TestServer;
    let bytes: Uint8Array;
    let chunk: { sha256: string; size: number; offset: number };
    beforeAll(async () => {
      t = await startTestServer({ postgres: database === 'PostgreSQL' });
      bytes = seededBytes(700_000, 3);
      const signed = await publish(t, bytes, { model: 'm', version: '1.0.0' });
      await t.operator.promoteRelease('demo-app', 'stable', 'm', '1.0.0');
      chunk = { ...signed.signed.files[0]!.chunks[0]!, offset: 0 };
    });
    afterAll(async () => {
      await t?.stop();
    });

    const chunkUrl = () => `${t.server.url}/v1/chunks/${chunk.sha256}`;
    const expected = (start: number, end: number) =>
      bytes.subarray(chunk.offset + start, chunk.offset + end + 1);

    it('serves a chunk whole, with a strong ETag and immutable caching', async () => {
      const response = await fetch(chunkUrl());
      expect(response.status).toBe(200);
      expect(response.headers.get('etag')).toBe(`"${chunk.sha256}"`);
      expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(response.headers.get('accept-ranges')).toBe('bytes');
      expect(response.headers.get('content-length')).toBe(String(chunk.size));
      expect(response.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      const body = new Uint8Array(await response.arrayBuffer());
      expect(sha256(body)).toBe(chunk.sha256);
    });

    it('answers If-None-Match with 304 and no body, HEAD with the length and no body', async () => {
      const cached = await fetch(chunkUrl(), { headers: { 'if-none-match': `W/"${chunk.sha256}"` } });
      expect(cached.status).toBe(304);
      expect(await cached.text()).toBe('');
      const head = await fetch(chunkUrl(), { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(chunk.size));
    });

    it('serves byte ranges (206) and refuses unsatisfiable ones (416)', async () => {
      const part = await fetch(chunkUrl(), { headers: { range: 'bytes=1000-70999' } });
      expect(part.status).toBe(206);
      expect(part.headers.get('content-range')).toBe(`bytes 1000-70999/${chunk.size}`);
      expect(part.headers.get('content-length')).toBe('70000');
      expect(Buffer.from(await part.arrayBuffer()).equals(Buffer.from(expected(1000, 70999)))).toBe(true);
      const tail = await fetch(chunkUrl(), { headers: { range: 'bytes=-10' } });
      expect(tail.status).toBe(206);
      expect(
        Buffer.from(await tail.arrayBuffer()).equals(Buffer.from(expected(chunk.size - 10, chunk.size - 1))),
      ).toBe(true);
      const beyond = await fetch(chunkUrl(), { headers: { range: `bytes=${chunk.size}-` } });
      expect(beyond.status).toBe(416);
      expect(beyond.headers.get('content-range')).toBe(`bytes */${chunk.size}`);
      expect((await beyond.json()).error.code).toBe('E_RANGE');
    });

    it('answers 404 with a typed error for a chunk it does not hold', async () => {
      const response = await fetch(`${t.server.url}/v1/chunks/${'0'.repeat(64)}`);
      expect(response.status).toBe(404);
      expect((await response.json()).error.code).toBe('E_NOT_FOUND');
    });

    it('serves the manifest compressed as the client accepts, and 304 for its ETag', async () => {
      const plain = await fetch(`${t.server.url}${MANIFEST}`, { headers: { 'accept-encoding': 'identity' } });
      expect(plain.headers.get('content-encoding')).toBeNull();
      const etag = plain.headers.get('etag')!;
      expect(etag).toMatch(/^"[0-9a-f]{40}"$/);
      const text = await plain.text();
      for (const encoding of ['br', 'gzip']) {
        const response = await fetch(`${t.server.url}${MANIFEST}`, {
          headers: { 'accept-encoding': encoding },
        });
        expect(response.headers.get('content-encoding')).toBe(encoding);
        expect(response.headers.get('etag')).toBe(`${etag.slice(0, -1)}-${encoding}"`);
        expect(response.headers.get('vary')).toBe('Accept-Encoding');
        expect(await response.text()).toBe(text); // fetch decodes: the same signed bytes
      }
      for (const tag of [
        etag,
        `W/${etag}`,
        `${etag.slice(0, -1)}-br"`,
        `"other", ${etag.slice(0, -1)}-gzip"`,
      ]) {
        const cached = await fetch(`${t.server.url}${MANIFEST}`, { headers: { 'if-none-match': tag } });
        expect(cached.status).toBe(304);
      }
      const other = await fetch(`${t.server.url}${MANIFEST}`, { headers: { 'if-none-match': '"0000"' } });
      expect(other.status).toBe(200);
      await verifyManifest(text, {
        root: t.server.trustedRoot,
        app: 'demo-app',
        channel: 'stable',
        now: new Date(),
      });
    });

    it("serves this process's own change at once", async () => {
      const before = await (await fetch(`${t.server.url}${MANIFEST}`)).text();
      await publish(t, seededBytes(1000, 9), { model: 'm', version: '1.0.1' });
      await t.operator.promoteRelease('demo-app', 'stable', 'm', '1.0.1');
      const after = await (await fetch(`${t.server.url}${MANIFEST}`)).text();
      expect(after).not.toBe(before);
      expect(after).toContain('1.0.1');
    });

    if (database === 'PostgreSQL')
      it("serves another process's change within a second", async () => {
        let other: RunningServer | undefined;
        const dataDir = await mkdtemp(join(tmpdir(), 'edgeship-other-'));
        try {
          other = await startServer({
            logLevel: 'silent',
            databaseUrl: t.databaseUrl!,
            dataDir,
            keysDir: join(t.dataDir, 'keys'),
          });
          const read = async () => (await fetch(`${other!.url}${MANIFEST}`)).text();
          expect(await read()).toContain('1.0.1'); // now cached in the other process
          await publish(t, seededBytes(1000, 10), { model: 'm', version: '1.0.2' });
          await t.operator.promoteRelease('demo-app', 'stable', 'm', '1.0.2');
          const changed = Date.now();
          let seen = await read();
          while (!seen.includes('1.0.2') && Date.now() - changed < 3000) {
            await new Promise((r) => setTimeout(r, 50));
            seen = await read();
          }
          expect(seen).toContain('1.0.2');
          expect(Date.now() - changed).toBeLessThan(1000);
        } finally {
          await other?.close();
          await rm(dataDir, { recursive: true, force: true });
        }
      });
  });
