// Test helpers for the node:http fast paths (manifest-fast-path.ts, chunk-fast-path.ts): raw
// requests that keep header names as sent, and a server with the fast path beside one without.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type RequestListener, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import pino from 'pino';
import { addressFrom } from './client-address.ts';
import type { NodeFastPath } from './manifest-fast-path.ts';
import type { HttpMetrics } from './metrics.ts';
import { rateLimit } from './rate-limit.ts';

// Set per connection or per answer by node:http and Hono alike; not part of what is compared.
const VARYING = new Set(['date', 'connection', 'keep-alive', 'x-request-id']);

export interface Raw {
  status: number;
  headers: Record<string, string>;
  /** Header names as sent: node:http keeps the fast path's `ETag`, Hono's adapter writes `etag`. */
  rawNames: string[];
  body: Buffer;
}

export function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Raw> {
  return new Promise((resolve, reject) => {
    request(url, { method, headers }, (res: IncomingMessage) => {
      const parts: Buffer[] = [];
      res.on('data', (p: Buffer) => parts.push(p));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers as Record<string, string>,
          rawNames: res.rawHeaders.filter((_, i) => i % 2 === 0),
          body: Buffer.concat(parts),
        }),
      );
    })
      .on('error', reject)
      .end();
  });
}

/** The headers both servers should agree on. */
export const comparable = (headers: Record<string, string>) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !VARYING.has(name)));

export interface FastPathServers {
  /** The fast path in front of the app, as server.ts wires it. */
  url: string;
  /** The same app on node:http without the fast path: what the fast path must answer like. */
  honoUrl: string;
  close(): void;
}

async function listen(listener: RequestListener): Promise<[Server, string]> {
  const server = createServer(listener);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return [server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`];
}

export async function fastPathServers(fast: NodeFastPath, hono: RequestListener): Promise<FastPathServers> {
  const [server, url] = await listen((req, res) => fast(req, res) || hono(req, res));
  const [honoOnly, honoUrl] = await listen(hono);
  return {
    url,
    honoUrl,
    close: () => {
      server.close();
      honoOnly.close();
    },
  };
}

/**
 * What both fast paths take besides their data: a limit of `points` a minute, the metrics, a silent
 * log, and a fallback to the app that notes each request it was handed (in `fellBack`).
 */
export function fastPathDeps(
  app: { fetch: Parameters<typeof getRequestListener>[0] },
  points: number,
  metrics: HttpMetrics,
  fellBack: string[],
) {
  const hono = getRequestListener(app.fetch);
  return {
    hono,
    common: {
      limit: rateLimit({ points, windowSec: 60, key: () => 'unused' }),
      address: addressFrom(0),
      metrics,
      log: pino({ level: 'silent' }),
      fallback: (req: IncomingMessage, res: Parameters<RequestListener>[1]) => {
        fellBack.push(`${req.method} ${req.url}`);
        return hono(req, res);
      },
    },
  };
}
