import { Name, Sha256Hex } from '@edgeship/protocol';
import { Hono } from 'hono';
import { ApiError, notFound } from '../http/api-error.ts';
import type { ServerKeys } from '../keys/server-keys.ts';
import type { RegistryService } from '../registry/service.ts';
import type { BlobStore, ManifestRecord, RegistryStore } from '../storage/types.ts';

export interface PublicDeps {
  registry: RegistryStore;
  blobs: BlobStore;
  service: RegistryService;
  keys: ServerKeys;
  now?: () => Date;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';
// Short, so a halt reaches the fleet within a minute even through a caching proxy.
const MANIFEST_CACHE = 'public, max-age=30, must-revalidate';

/** What devices call: signed manifests, the key set, and chunks by hash. No authentication. */
export function createPublicRoutes(deps: PublicDeps) {
  const { registry, blobs, service } = deps;
  const now = deps.now ?? (() => new Date());
  const app = new Hono();

  app.get('/apps/:app/channels/:channel/manifest', async (c) => {
    const app_ = parseParam(Name, c.req.param('app'), 'app');
    const channel = parseParam(Name, c.req.param('channel'), 'channel');
    let manifest = await registry.latestManifest(app_, channel);
    if (!manifest) throw notFound(`channel ${app_}/${channel}`);
    manifest = await refreshIfStale(manifest, service, now());
    c.header('ETag', manifest.etag);
    c.header('Cache-Control', MANIFEST_CACHE);
    if (etagMatches(c.req.header('if-none-match'), manifest.etag)) return c.body(null, 304);
    c.header('Content-Type', 'application/json; charset=utf-8');
    return c.body(manifest.body, 200);
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
    c.header('Cache-Control', IMMUTABLE);
    c.header('Accept-Ranges', 'bytes');
    if (etagMatches(c.req.header('if-none-match'), etag)) return c.body(null, 304);
    const bytes = await blobs.get(sha256);
    if (!bytes) throw notFound(`chunk ${sha256}`);
    c.header('Content-Type', 'application/octet-stream');
    const range = c.req.header('range');
    if (range) {
      const [start, end] = parseRange(range, bytes.length);
      c.header('Content-Range', `bytes ${start}-${end}/${bytes.length}`);
      if (c.req.method === 'HEAD') return c.body(null, 206);
      return c.body(bytes.subarray(start, end + 1) as Uint8Array<ArrayBuffer>, 206);
    }
    c.header('Content-Length', String(bytes.length));
    if (c.req.method === 'HEAD') return c.body(null, 200);
    return c.body(bytes as Uint8Array<ArrayBuffer>, 200);
  });

  return app;
}

function parseParam<T>(
  schema: { safeParse(v: unknown): { success: boolean; data?: T } },
  value: string,
  what: string,
) {
  const result = schema.safeParse(value);
  if (!result.success) throw new ApiError(400, 'E_VALIDATION', `${what}: not a valid value`);
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
    new ApiError(416 as 400, 'E_RANGE', `range ${header} cannot be served`, {
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

/**
 * A manifest is re-signed as a new version once half its lifetime has passed, so devices always
 * find one that has not expired without any background job (and it works on every Hono target).
 */
async function refreshIfStale(manifest: ManifestRecord, service: RegistryService, at: Date) {
  if (Date.parse(manifest.createdAt) + service.manifestTtlMs / 2 > at.getTime()) return manifest;
  return (await service.refreshManifest(manifest.app, manifest.channel)) ?? manifest;
}
