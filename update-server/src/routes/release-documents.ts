import { MAX_RELEASE_DOCUMENT_BYTES, Sha256Hex } from '@edgeship/protocol';
import { Hono } from 'hono';
import { notFound, ValidationError } from '../http/api-errors.ts';
import type { BlobStore } from '../storage/types.ts';
import { etagMatches } from './public.ts';

export interface ReleaseDocumentDeps {
  blobs: BlobStore;
}

// A hash always names the same bytes, so any cache in between may keep them for ever.
const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * Signed release documents by the SHA-256 the manifest names them by (schema 2). A device fetches
 * one only when it downloads that release, and checks its length, hash and publisher signature
 * (verifyReleaseDocument) before it trusts a byte of it. No authentication: releases are public.
 */
export function createReleaseDocumentRoutes(deps: ReleaseDocumentDeps) {
  const app = new Hono();
  app.get('/releases/by-hash/:sha256', async (c) => {
    const parsed = Sha256Hex.safeParse(c.req.param('sha256'));
    if (!parsed.success) throw new ValidationError('sha256: not a valid value');
    const sha256 = parsed.data;
    const etag = `"${sha256}"`;
    c.header('ETag', etag);
    c.header('Cache-Control', IMMUTABLE);
    if (etagMatches(c.req.header('if-none-match'), etag)) return c.body(null, 304);
    // The blob store also holds model chunks; only what can be a release document is served here.
    const size = await deps.blobs.size(sha256);
    if (size === null || size > MAX_RELEASE_DOCUMENT_BYTES) throw notFound(`release document ${sha256}`);
    const bytes = await deps.blobs.get(sha256);
    if (!bytes) throw notFound(`release document ${sha256}`);
    c.header('Content-Type', 'application/json; charset=utf-8');
    return c.body(bytes as Uint8Array<ArrayBuffer>, 200);
  });
  return app;
}
