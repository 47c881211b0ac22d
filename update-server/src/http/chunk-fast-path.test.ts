import { seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { CHUNK_ROUTE, chunkFastPath } from './chunk-fast-path.ts';
import { comparable, type FastPathServers, fastPathDeps, fastPathServers, get } from './fast-path-testing.ts';
import { createHttpMetrics } from './metrics.ts';

describe('the chunk fast path', () => {
  let t: TestServer;
  let servers: FastPathServers | undefined;
  let url: string;
  let honoUrl: string;
  let chunk: { sha256: string; size: number };
  const bytes = seededBytes(300_000, 9);
  const metrics = createHttpMetrics();
  const fellBack: string[] = [];

  beforeAll(async () => {
    t = await startTestServer();
    const { signed } = await publish(t, bytes, { model: 'm', version: '1.0.0' });
    chunk = signed.files[0]!.chunks[0]!;
    const { hono, common } = fastPathDeps(t.server.app, 40, metrics, fellBack);
    const fast = chunkFastPath({ ...common, blobs: t.server.blobs });
    servers = await fastPathServers(fast, hono);
    ({ url, honoUrl } = servers);
  });
  afterAll(async () => {
    servers?.close();
    await t?.stop();
  });

  it('answers GET, HEAD and 304 with the same status, headers and bytes as the Hono route', async () => {
    const path = `/v1/chunks/${chunk.sha256}`;
    const etag = `"${chunk.sha256}"`;
    const cases: Array<[string, Record<string, string>]> = [];
    for (const method of ['GET', 'HEAD']) {
      cases.push([method, {}]);
      for (const tag of [etag, `W/${etag}`, `"other", ${etag}`, '*', '"other"'])
        cases.push([method, { 'if-none-match': tag }]);
    }
    for (const [method, headers] of cases) {
      const fast = await get(`${url}${path}`, headers, method);
      const viaHono = await get(`${honoUrl}${path}`, headers, method);
      expect(
        { status: fast.status, headers: comparable(fast.headers) },
        `${method} ${JSON.stringify(headers)}`,
      ).toEqual({ status: viaHono.status, headers: comparable(viaHono.headers) });
      expect(fast.body.equals(viaHono.body)).toBe(true);
    }
    const whole = await get(`${url}${path}`);
    expect(whole.body.length).toBe(chunk.size);
    expect(whole.body.equals(Buffer.from(bytes.subarray(0, chunk.size)))).toBe(true);
    expect(whole.headers).toMatchObject({
      etag,
      'cache-control': 'public, max-age=31536000, immutable',
      'access-control-allow-origin': '*',
      'cross-origin-resource-policy': 'cross-origin',
      'content-length': String(chunk.size),
    });
    expect(whole.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(fellBack).toEqual([]);
  });

  it('counts its answers in the same metrics series as the Hono route', async () => {
    const text = await metrics.registry.metrics();
    const route = CHUNK_ROUTE.replaceAll('/', '\\/');
    for (const [method, status] of [
      ['GET', 200],
      ['GET', 304],
      ['HEAD', 200],
    ])
      expect(text).toMatch(
        new RegExp(
          `edgeship_http_requests_total\\{method="${method}",route="${route}",status="${status}"\\} [1-9]`,
        ),
      );
  });

  it('leaves ranges, malformed hashes and other methods to Hono, and sends unknown chunks to it', async () => {
    fellBack.length = 0;
    const path = `/v1/chunks/${chunk.sha256}`;
    const range = await get(`${url}${path}`, { range: 'bytes=10-19' });
    expect(range.status).toBe(206);
    expect(range.body.equals(Buffer.from(bytes.subarray(10, 20)))).toBe(true);
    expect((await get(`${url}${path}`, { range: 'bytes=999999999-' })).status).toBe(416);
    expect((await get(`${url}/v1/chunks/${chunk.sha256.toUpperCase()}`)).status).toBe(400);
    expect((await get(`${url}${path}?x=1`)).status).toBe(200);
    expect(fellBack).toEqual([]); // not through `fallback`: the fast path said no at once
    const unknown = `/v1/chunks/${'0'.repeat(64)}`;
    const missing = await get(`${url}${unknown}`);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body.toString()).error.code).toBe('E_NOT_FOUND');
    expect(fellBack).toEqual([`GET ${unknown}`]);
  });

  it('takes its points from the public bucket and leaves a client over it to Hono', async () => {
    fellBack.length = 0;
    // 40 points a minute; the earlier tests took about half of them.
    for (let i = 0; i < 30; i++) await get(`${url}/v1/chunks/${chunk.sha256}`, {}, 'HEAD');
    expect(fellBack.length).toBeGreaterThan(0);
    expect(fellBack.every((r) => r === `HEAD /v1/chunks/${chunk.sha256}`)).toBe(true);
  });
});
