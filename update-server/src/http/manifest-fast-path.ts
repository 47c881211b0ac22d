import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import {
  type CachedManifest,
  type Encoding,
  type ManifestCache,
  pickEncoding,
} from '../registry/manifest-cache.ts';
import { etagMatches, MANIFEST_HEADERS } from '../routes/public.ts';
import { DEVICE_HEADERS } from './device-headers.ts';
import type { HttpMetrics } from './metrics.ts';
import type { RateLimitMiddleware } from './rate-limit.ts';

/** Answers a node:http request itself (true), or leaves it to Hono (false). */
export type NodeFastPath = (req: IncomingMessage, res: ServerResponse) => boolean;

/** What every node:http fast path shares with the Hono routes it stands in front of. */
export interface NodeFastPathDeps {
  /** The public routes' bucket: a fast answer takes its point from the same one. */
  limit: RateLimitMiddleware;
  /** The client address rate limits count against (http/client-address.ts `addressFrom`). */
  address: (forwardedFor: string | undefined, peer: string) => string;
  metrics: HttpMetrics;
  log: Logger;
  /** Where every request the fast path does not answer goes: the Hono app. */
  fallback: (req: IncomingMessage, res: ServerResponse) => unknown;
}

export interface ManifestFastPathDeps extends NodeFastPathDeps {
  manifests: ManifestCache;
}

/** The route pattern Hono reports for the manifest (metrics label): the same series either way. */
export const MANIFEST_ROUTE = '/v1/apps/:app/channels/:channel/manifest';
const MANIFEST_PATH = /^\/v1\/apps\/([a-z0-9-]+)\/channels\/([a-z0-9-]+)\/manifest$/;
// hono/request-id's rule for a client-sent X-Request-Id (at most 255 characters of these).
const REQUEST_ID = /^[\w\-=]{1,255}$/;

/** Flat header lists (what `writeHead` takes) per encoding, for 200 and for 304. */
interface Prepared {
  ok: Record<Encoding, string[]>;
  notModified: Record<Encoding, string[]>;
}

/**
 * A manifest check is most of a fleet's traffic, and its answer is fixed bytes held in memory
 * (registry/manifest-cache.ts). This answers a GET for a fresh cached copy on node:http directly,
 * with header lists prepared once per version, instead of through Hono, whose Request/Response
 * wrapping and middleware chain cost more than the answer itself. It does what the Hono route and
 * its middleware do for the same request: the public rate limit (same bucket), the same headers
 * (CORS, caching, ETag per encoding, X-Request-Id), the same metrics series. Anything else goes
 * to Hono unchanged: other methods and paths, a query string, a name that is not in the cache or
 * whose copy is due for a database recheck, a client over its limit (Hono then answers the 429),
 * and every request while request logging is on.
 */
export function manifestFastPath(deps: ManifestFastPathDeps): NodeFastPath {
  const prepared = new WeakMap<CachedManifest, Prepared>();
  const headersOf = (manifest: CachedManifest): Prepared => {
    let found = prepared.get(manifest);
    if (!found) {
      found = prepare(manifest);
      prepared.set(manifest, found);
    }
    return found;
  };

  // The two answers' series (plain counters, http/metrics.ts), looked up once.
  const recordOk = deps.metrics.recorder('GET', MANIFEST_ROUTE, 200);
  const recordNotModified = deps.metrics.recorder('GET', MANIFEST_ROUTE, 304);

  const answer = (req: IncomingMessage, res: ServerResponse, manifest: CachedManifest, started: number) => {
    const { headers } = req;
    const encoding = pickEncoding(headers['accept-encoding']);
    const lists = headersOf(manifest);
    const sent = headers['x-request-id'];
    const requestId = typeof sent === 'string' && REQUEST_ID.test(sent) ? sent : randomUUID();
    const ifNoneMatch = headers['if-none-match'];
    const status = ifNoneMatch !== undefined && matchesAny(ifNoneMatch, manifest) ? 304 : 200;
    const list = (status === 304 ? lists.notModified[encoding] : lists.ok[encoding]).slice();
    list.push('X-Request-Id', requestId);
    res.writeHead(status, list);
    res.end(status === 304 ? undefined : manifest[encoding]);
    (status === 304 ? recordNotModified : recordOk)((performance.now() - started) / 1000);
  };

  return (req, res) => {
    if (req.method !== 'GET') return false;
    const match = MANIFEST_PATH.exec(req.url ?? '');
    if (!match) return false;
    const manifest = deps.manifests.peek(match[1]!, match[2]!);
    // Logging builds a line per request; that path (Hono's) is the one that writes it.
    if (!manifest || deps.log.isLevelEnabled('info')) return false;
    const started = performance.now();
    const { headers } = req;
    const key = deps.address(
      headers['x-forwarded-for'] as string | undefined,
      req.socket.remoteAddress ?? 'unknown',
    );
    // Over the limit (or the shared limiter failed): Hono takes a point again and renders the error.
    const taken = deps.limit.take(key);
    if (taken === true) answer(req, res, manifest, started);
    else if (taken === false) deps.fallback(req, res);
    else
      taken.then(
        (ok) => (ok ? answer(req, res, manifest, started) : deps.fallback(req, res)),
        () => deps.fallback(req, res),
      );
    return true;
  };
}

/** RFC 9110 §13.1.2 as in routes/public.ts; the exact tag a client echoes is a string compare. */
function matchesAny(ifNoneMatch: string, manifest: CachedManifest): boolean {
  const { identity, br, gzip } = manifest.etags;
  if (ifNoneMatch === br || ifNoneMatch === gzip || ifNoneMatch === identity) return true;
  return etagMatches(ifNoneMatch, identity) || etagMatches(ifNoneMatch, br) || etagMatches(ifNoneMatch, gzip);
}

function prepare(manifest: CachedManifest): Prepared {
  const ok = {} as Record<Encoding, string[]>;
  const notModified = {} as Record<Encoding, string[]>;
  for (const encoding of ['identity', 'br', 'gzip'] as const) {
    const common = [
      ...Object.entries(DEVICE_HEADERS).flat(),
      ...Object.entries(MANIFEST_HEADERS).flat(),
      'ETag',
      manifest.etags[encoding],
    ];
    notModified[encoding] = common;
    ok[encoding] = [
      ...common,
      'Content-Type',
      'application/json; charset=utf-8',
      ...(encoding === 'identity' ? [] : ['Content-Encoding', encoding]),
      'Content-Length',
      String(manifest[encoding].byteLength),
    ];
  }
  return { ok, notModified };
}
