import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import { CHUNK_HEADERS, etagMatches } from '../routes/public.ts';
import type { BlobStore } from '../storage/types.ts';
import { DEVICE_HEADERS } from './device-headers.ts';
import type { NodeFastPath, NodeFastPathDeps } from './manifest-fast-path.ts';

export interface ChunkFastPathDeps extends NodeFastPathDeps {
  blobs: BlobStore;
}

/** The route pattern Hono reports for chunks (metrics label): the same series either way. */
export const CHUNK_ROUTE = '/v1/chunks/:sha256';
const CHUNK_PATH = /^\/v1\/chunks\/([0-9a-f]{64})$/;
const REQUEST_ID = /^[\w\-=]{1,255}$/;
const COMMON = [...Object.entries(DEVICE_HEADERS).flat(), ...Object.entries(CHUNK_HEADERS).flat()];

/**
 * A chunk download on node:http as a static file server does it: headers written once, the blob
 * store's stream piped into the socket. Through Hono the same answer paid for a Request, a
 * Headers object per middleware, a Response and its copy, which cost as much as reading the
 * bytes (chunk GETs at 0.72x a node:http static server under load). Same answers as the Hono
 * route (routes/public.ts; chunk-fast-path.test.ts compares them): the public rate limit (same
 * bucket), CORS, ETag and immutable caching, 304 on If-None-Match, X-Request-Id, the metrics
 * series. Hono keeps everything else: Range requests (206, 416), unknown or malformed hashes
 * (404, 400), a client over its limit (429), any request while request logging is on.
 */
/** Answers a chunk request (`size` null: a 304), timed from `started` (performance.now()). */
type Answer = (
  req: IncomingMessage,
  res: ServerResponse,
  sha256: string,
  size: number | null,
  started: number,
) => unknown;

export function chunkFastPath(deps: ChunkFastPathDeps): NodeFastPath {
  const record = {
    GET: {
      200: deps.metrics.recorder('GET', CHUNK_ROUTE, 200),
      304: deps.metrics.recorder('GET', CHUNK_ROUTE, 304),
    },
    HEAD: {
      200: deps.metrics.recorder('HEAD', CHUNK_ROUTE, 200),
      304: deps.metrics.recorder('HEAD', CHUNK_ROUTE, 304),
    },
  };

  const answer: Answer = (req, res, sha256, size, started) => {
    const method = req.method as 'GET' | 'HEAD';
    const { headers } = req;
    const etag = `"${sha256}"`;
    const sent = headers['x-request-id'];
    const requestId = typeof sent === 'string' && REQUEST_ID.test(sent) ? sent : randomUUID();
    const list = [...COMMON, 'ETag', etag, 'X-Request-Id', requestId];
    if (size === null) {
      res.writeHead(304, list);
      res.end();
      record[method][304]((performance.now() - started) / 1000);
      return;
    }
    list.push('Content-Type', 'application/octet-stream', 'Content-Length', String(size));
    res.writeHead(200, list);
    record[method][200]((performance.now() - started) / 1000);
    if (method === 'HEAD') return res.end();
    pipeline(deps.blobs.stream(sha256, 0, size - 1), res, (error) => {
      // Client went away, or the store failed mid-body: the socket is closed, the length is short.
      if (error) res.destroy();
    });
  };
  /** The public bucket's point, then the answer; over the limit, Hono takes one again and says 429. */
  const limited: Answer = (req, res, sha256, size, started) => {
    const key = deps.address(
      req.headers['x-forwarded-for'] as string | undefined,
      req.socket.remoteAddress ?? 'unknown',
    );
    const taken = deps.limit.take(key);
    if (taken === true) return answer(req, res, sha256, size, started);
    if (taken === false) return deps.fallback(req, res);
    return taken.then(
      (ok) => (ok ? answer(req, res, sha256, size, started) : deps.fallback(req, res)),
      () => deps.fallback(req, res),
    );
  };
  const failed = (req: IncomingMessage, res: ServerResponse) => (error: unknown) => {
    deps.log.error({ err: error }, 'chunk fast path failed');
    if (!res.headersSent) return deps.fallback(req, res);
    res.destroy();
  };

  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const match = CHUNK_PATH.exec(req.url ?? '');
    if (!match || req.headers.range !== undefined || deps.log.isLevelEnabled('info')) return false;
    const started = performance.now();
    const sha256 = match[1]!;
    // A revalidation needs no store read (the tag is the hash). Otherwise the size comes first, so
    // an unknown chunk costs one point, the Hono route's, which renders its 404.
    if (etagMatches(req.headers['if-none-match'], `"${sha256}"`)) {
      try {
        const sent = limited(req, res, sha256, null, started);
        if (sent instanceof Promise) sent.catch(failed(req, res));
      } catch (error) {
        failed(req, res)(error);
      }
      return true;
    }
    deps.blobs
      .size(sha256)
      .then((size) =>
        size === null || size === 0 ? deps.fallback(req, res) : limited(req, res, sha256, size, started),
      )
      .catch(failed(req, res));
    return true;
  };
}
