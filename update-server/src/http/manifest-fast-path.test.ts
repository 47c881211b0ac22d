import { once } from 'node:events';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { seededBytes } from '@edgeship/protocol';
import { getRequestListener } from '@hono/node-server';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { ManifestCache } from '../registry/manifest-cache.ts';
import { addressFrom } from './client-address.ts';
import { MANIFEST_ROUTE, manifestFastPath } from './manifest-fast-path.ts';
import { createHttpMetrics } from './metrics.ts';
import { rateLimit } from './rate-limit.ts';

const MANIFEST = '/v1/apps/demo-app/channels/stable/manifest';
// Set per connection or per answer by node:http and Hono alike; not part of what is compared.
const VARYING = new Set(['date', 'connection', 'keep-alive', 'x-request-id']);

interface Raw {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Raw> {
  return new Promise((resolve, reject) => {
    request(url, { method, headers }, (res: IncomingMessage) => {
      const parts: Buffer[] = [];
      res.on('data', (p: Buffer) => parts.push(p));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers as Record<string, string>,
          body: Buffer.concat(parts),
        }),
      );
    })
      .on('error', reject)
      .end();
  });
}

const comparable = (headers: Record<string, string>) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !VARYING.has(name)));

describe('the manifest fast path', () => {
  let t: TestServer;
  let server: Server;
  let honoOnly: Server;
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
    const hono = getRequestListener(t.server.app.fetch);
    const fast = manifestFastPath({
      manifests,
      limit: rateLimit({ points: 40, windowSec: 60, key: () => 'unused' }),
      address: addressFrom(0),
      metrics,
      log: pino({ level: 'silent' }),
      fallback: (req, res) => {
        fellBack.push(`${req.method} ${req.url}`);
        return hono(req, res);
      },
    });
    server = createServer((req, res) => fast(req, res) || hono(req, res));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // The same app on node:http without the fast path: what it must answer like.
    honoOnly = createServer(hono);
    honoOnly.listen(0, '127.0.0.1');
    await once(honoOnly, 'listening');
    honoUrl = `http://127.0.0.1:${(honoOnly.address() as AddressInfo).port}`;
    for (const encoding of ['identity', 'br', 'gzip']) {
      const r = await t.server.app.request(MANIFEST, { headers: { 'accept-encoding': encoding } });
      ETAG_OF[encoding] = r.headers.get('etag')!;
    }
  });
  afterAll(async () => {
    server?.close();
    honoOnly?.close();
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

  it('takes its points from the public bucket and leaves a client over it to Hono', async () => {
    fellBack.length = 0;
    // 40 points a minute; the earlier tests took most of them.
    for (let i = 0; i < 40; i++) await get(`${url}${MANIFEST}`);
    expect(fellBack.length).toBeGreaterThan(0);
    expect(fellBack.every((r) => r === `GET ${MANIFEST}`)).toBe(true);
  });
});
