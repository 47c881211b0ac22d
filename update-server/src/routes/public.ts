import { Name, Sha256Hex } from '@edgeship/protocol';
import { Hono } from 'hono';
import { notFound, RangeNotSatisfiableError, ValidationError, withHeaders } from '../http/api-errors.ts';
import { sendStream } from '../http/send-stream.ts';
import type { ServerKeys } from '../keys/server-keys.ts';
import { ManifestCache, pickEncoding } from '../registry/manifest-cache.ts';
import type { RegistryService } from '../registry/service.ts';
import type { BlobStore, RegistryStore } from '../storage/types.ts';

export interface PublicDeps {
  registry: RegistryStore;
  blobs: BlobStore;
  service: RegistryService;
  keys: ServerKeys;
  now?: () => Date;
  /** How soon another process's manifest change is served (see registry/manifest-cache.ts). */
  manifestRecheckMs?: number;
  /** The cache to serve from (shared with http/manifest-fast-path.ts); made here when absent. */
  manifests?: ManifestCache;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';
/** A chunk's headers besides ETag, here and on the chunk fast path (http/chunk-fast-path.ts). */
export const CHUNK_HEADERS: Readonly<Record<string, string>> = {
  // Content-addressed: the bytes under a hash never change.
  'Cache-Control': IMMUTABLE,
  'Accept-Ranges': 'bytes',
};
/** A manifest's caching headers (also sent by http/manifest-fast-path.ts). */
export const MANIFEST_HEADERS: Readonly<Record<string, string>> = {
  // Short, so a halt reaches the fleet within a minute even through a caching proxy.
  'Cache-Control': 'public, max-age=30, must-revalidate',
  Vary: 'Accept-Encoding',
};

/** What devices call: signed manifests, the key set, and chunks by hash. No authentication. */
export function createPublicRoutes(deps: PublicDeps) {
  const { registry, blobs, service } = deps;
  const now = deps.now ?? (() => new Date());
  const manifests =
    deps.manifests ??
    new ManifestCache(registry, service, { now: () => now().getTime(), recheckMs: deps.manifestRecheckMs });
  const app = new Hono();

  app.get('/apps/:app/channels/:channel/manifest', async (c) => {
    const rawApp = c.req.param('app');
    const rawChannel = c.req.param('channel');
    // A cached entry exists only for names that were validated when it was loaded.
    let manifest = manifests.peek(rawApp, rawChannel);
    if (!manifest) {
      const app_ = parseParam(Name, rawApp, 'app');
      const channel = parseParam(Name, rawChannel, 'channel');
      manifest = (await manifests.get(app_, channel)) ?? undefined;
      if (!manifest) throw notFound(`channel ${app_}/${channel}`);
    }
    for (const [name, value] of Object.entries(MANIFEST_HEADERS)) c.header(name, value);
    const encoding = pickEncoding(c.req.header('accept-encoding'));
    c.header('ETag', manifest.etags[encoding]);
    const ifNoneMatch = c.req.header('if-none-match');
    if (ifNoneMatch && Object.values(manifest.etags).some((etag) => etagMatches(ifNoneMatch, etag))) {
      return c.body(null, 304);
    }
    c.header('Content-Type', 'application/json; charset=utf-8');
    if (encoding === 'identity') return c.body(manifest.identity as Uint8Array<ArrayBuffer>, 200);
    c.header('Content-Encoding', encoding);
    return c.body(manifest[encoding] as Uint8Array<ArrayBuffer>, 200);
  });

  app.get('/keyset', (c) => {
    c.header('Cache-Control', 'public, max-age=300');
    return c.json(deps.keys.keySet, 200);
  });

  /** The pinned root's public keys: what an app embeds at build time (public information). */
  app.get('/root', (c) => c.json(deps.keys.trustedRoot, 200));

  app.on(['GET', 'HEAD'], '/chunks/:sha256', async (c) => {
    const sha256 = parseParam(Sha256Hex, c.req.param('sha256'), 'sha256');
    const etag = `"${sha256}"`;
    c.header('ETag', etag);
    for (const [name, value] of Object.entries(CHUNK_HEADERS)) c.header(name, value);
    if (etagMatches(c.req.header('if-none-match'), etag)) return c.body(null, 304);
    const size = await blobs.size(sha256);
    if (size === null) throw notFound(`chunk ${sha256}`);
    c.header('Content-Type', 'application/octet-stream');
    let status: 200 | 206 = 200;
    let [start, end] = [0, size - 1];
    const range = c.req.header('range');
    if (range) {
      [start, end] = parseRange(range, size);
      status = 206;
      c.header('Content-Range', `bytes ${start}-${end}/${size}`);
    }
    c.header('Content-Length', String(end - start + 1));
    if (c.req.method === 'HEAD' || size === 0) return c.body(null, status);
    return sendStream(c, status, blobs.stream(sha256, start, end));
  });

  return app;
}

function parseParam<T>(
  schema: { safeParse(v: unknown): { success: boolean; data?: T } },
  value: string,
  what: string,
) {
  const result = schema.safeParse(value);
  if (!result.success) throw new ValidationError(`${what}: not a valid value`);
  return result.data as T;
}

/** RFC 9110 §13.1.2: If-None-Match is a list of entity tags, or "*". Weak comparison for GET. */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === bare);
}

/** One `bytes=` range (RFC 9110 §14.1.2), clamped; several ranges or an unsatisfiable one → 416. */
export function parseRange(header: string, size: number): [number, number] {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  const unsatisfiable = () =>
    withHeaders(new RangeNotSatisfiableError(`range ${header} cannot be served`), {
      'Content-Range': `bytes */${size}`,
    });
  if (!match || (match[1] === '' && match[2] === '')) throw unsatisfiable();
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) throw unsatisfiable();
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || start > end) throw unsatisfiable();
  return [start, end];
}
