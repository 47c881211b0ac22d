import { seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { ManifestCache } from '../registry/manifest-cache.ts';
import { comparable, type FastPathServers, fastPathDeps, fastPathServers, get } from './fast-path-testing.ts';
import { MANIFEST_ROUTE, manifestFastPath } from './manifest-fast-path.ts';
import { createHttpMetrics } from './metrics.ts';

const MANIFEST = '/v1/apps/demo-app/channels/stable/manifest';
describe('the manifest fast path', () => {
  let t: TestServer;
  let servers: FastPathServers | undefined;
  let url: string;
  let honoUrl: string;
  const metrics = createHttpMetrics();
  const fellBack: string[] = [];
  const ETAG_OF: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestServer();
    await publish(t, seededBytes(5000, 4), { model: 'm', version: '1.0.0' });
    await t.operator.promoteRelease('demo-app', 'stable', 'm', '1.0.0');
    // A long recheck: every request in this test finds the copy fresh, so none falls back for that.
    const manifests = new ManifestCache(t.server.registry, t.server.service, { recheckMs: 600_000 });
    expect(await manifests.get('demo-app', 'stable')).not.toBeNull();
    const { hono, common } = fastPathDeps(t.server.app, 50, metrics, fellBack);
    const fast = manifestFastPath({ ...common, manifests });
    servers = await fastPathServers(fast, hono);
    ({ url, honoUrl } = servers);
    for (const encoding of ['identity', 'br', 'gzip']) {
      const r = await t.server.app.request(MANIFEST, { headers: { 'accept-encoding': encoding } });
      ETAG_OF[encoding] = r.headers.get('etag')!;
    }
  });
  afterAll(async () => {
    servers?.close();
    await t?.stop();
  });

  it('answers 200 and 304 with the same status, headers and bytes as the Hono route', async () => {
    const cases: Array<Record<string, string>> = [];
    for (const encoding of ['identity', 'br', 'gzip', 'gzip, deflate, br', 'br;q=0, gzip']) {
      cases.push({ 'accept-encoding': encoding });
      for (const tag of Object.values(ETAG_OF)) {
        cases.push({ 'accept-encoding': encoding, 'if-none-match': tag });
        cases.push({ 'accept-encoding': encoding, 'if-none-match': `"other", W/${tag}` });
      }
      cases.push({ 'accept-encoding': encoding, 'if-none-match': '"0000"' });
    }
    for (const headers of cases) {
      const fast = await get(`${url}${MANIFEST}`, headers);
      const viaHono = await get(`${honoUrl}${MANIFEST}`, headers);
      expect({ status: fast.status, headers: comparable(fast.headers) }, JSON.stringify(headers)).toEqual({
        status: viaHono.status,
        headers: comparable(viaHono.headers),
      });
      expect(fast.body.equals(viaHono.body)).toBe(true);
    }
    expect(fellBack).toEqual([]);
  });

  it("answers a 304 with every header of the 200 but the body's own (RFC 9110 §15.4.5)", async () => {
    // "the server generating a 304 response MUST generate any of the following header fields that
    // would have been sent in a 200 (OK) response to the same request: Content-Location, Date,
    // ETag, and Vary; Cache-Control and Expires": here also CORS and CORP, which a cross-origin
    // revalidation needs as much as the 200 does.
    const BODY = new Set(['content-type', 'content-length', 'content-encoding']);
    for (const encoding of ['identity', 'br', 'gzip']) {
      const ok = await get(`${url}${MANIFEST}`, { 'accept-encoding': encoding });
      const notModified = await get(`${url}${MANIFEST}`, {
        'accept-encoding': encoding,
        'if-none-match': ok.headers.etag!,
      });
      expect(ok.status).toBe(200);
      expect(notModified.status).toBe(304);
      expect(notModified.body.length).toBe(0);
      const withoutBody = Object.fromEntries(
        Object.entries(comparable(ok.headers)).filter(([name]) => !BODY.has(name)),
      );
      expect(comparable(notModified.headers), encoding).toEqual(withoutBody);
      expect(withoutBody).toMatchObject({
        etag: ETAG_OF[encoding],
        'cache-control': 'public, max-age=30, must-revalidate',
        vary: 'Accept-Encoding',
        'access-control-allow-origin': '*',
        'cross-origin-resource-policy': 'cross-origin',
      });
      expect(notModified.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(notModified.headers['x-request-id']).not.toBe(ok.headers['x-request-id']);
    }
    expect(fellBack).toEqual([]);
  });

  it("keeps a client's X-Request-Id when it is well-formed and makes one otherwise", async () => {
    expect((await get(`${url}${MANIFEST}`, { 'x-request-id': 'abc-123' })).headers['x-request-id']).toBe(
      'abc-123',
    );
    const made = (await get(`${url}${MANIFEST}`, { 'x-request-id': 'no spaces!' })).headers['x-request-id'];
    expect(made).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('counts its answers in the same metrics series as the Hono route', async () => {
    const text = await metrics.registry.metrics();
    const route = MANIFEST_ROUTE.replaceAll('/', '\\/');
    expect(text).toMatch(
      new RegExp(`edgeship_http_requests_total\\{method="GET",route="${route}",status="200"\\} [1-9]`),
    );
    expect(text).toMatch(
      new RegExp(`edgeship_http_requests_total\\{method="GET",route="${route}",status="304"\\} [1-9]`),
    );
  });

  it('leaves other methods, query strings and unknown channels to Hono', async () => {
    fellBack.length = 0;
    expect((await get(`${url}${MANIFEST}`, {}, 'HEAD')).status).toBe(200);
    expect((await get(`${url}${MANIFEST}?x=1`)).status).toBe(200);
    expect((await get(`${url}/v1/apps/demo-app/channels/nope/manifest`)).status).toBe(404);
    expect(fellBack).toEqual([]); // not through `fallback`: the fast path said no at once
  });

  it('rate-limits 304s on the real server: one bucket with the Hono routes, then 429 and Retry-After', async () => {
    const limited = await startTestServer({ rateLimits: { publicPerMinute: 6, adminPerMinute: 100 } });
    try {
      await publish(limited, seededBytes(3000, 5), { model: 'm', version: '1.0.0' });
      await limited.operator.promoteRelease('demo-app', 'stable', 'm', '1.0.0');
      const base = limited.server.url;
      // 1 point: the first check loads the cache through Hono.
      const first = await get(`${base}${MANIFEST}`);
      expect(first.status).toBe(200);
      const check = () => get(`${base}${MANIFEST}`, { 'if-none-match': first.headers.etag! });
      // 4 points: revalidations, answered on the fast path (node:http keeps its header names'
      // case, Hono's adapter lowercases them).
      const revalidated = [await check(), await check(), await check(), await check()];
      expect(revalidated.map((r) => r.status)).toEqual([304, 304, 304, 304]);
      expect(revalidated.some((r) => r.rawNames.includes('ETag'))).toBe(true);
      // 1 point: a chunk, through Hono's middleware, from the same bucket.
      expect((await get(`${base}/v1/chunks/${'a'.repeat(64)}`)).status).toBe(404);
      // The bucket is empty: the next revalidation is refused like any device request.
      const refused = await check();
      expect(refused.status).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(JSON.parse(refused.body.toString()).error.code).toBe('E_RATE_LIMITED');
      // CORS headers on the refusal too, so a browser device can read it.
      expect(refused.headers['access-control-allow-origin']).toBe('*');
      expect((await get(`${base}${MANIFEST}`)).status).toBe(429);
    } finally {
      await limited.stop();
    }
  });

  it('takes its points from the public bucket and leaves a client over it to Hono', async () => {
    fellBack.length = 0;
    // 50 points a minute; the earlier tests took most of them.
    for (let i = 0; i < 40; i++) await get(`${url}${MANIFEST}`);
    expect(fellBack.length).toBeGreaterThan(0);
    expect(fellBack.every((r) => r === `GET ${MANIFEST}`)).toBe(true);
  });
});
