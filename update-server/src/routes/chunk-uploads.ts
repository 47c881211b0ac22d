import { HashMismatchError, LengthMismatchError } from '@edgeship/protocol';
import { z } from '@hono/zod-openapi';
import { UnsupportedMediaTypeError, ValidationError } from '../http/api-errors.ts';
import { type AdminDeps, adminRoutes, json, jsonBody } from './admin-route.ts';
import { BinarySchema, ErrorSchema, MAX_CHUNK_BODY, MissingChunksBodySchema } from './api-schemas.ts';
import { Sha256Hex } from './wire-schemas.ts';

/** `/v1/admin/chunks` (publisher): which chunks the server lacks, and their upload by hash. */
export function createChunkUploadRoutes(deps: Pick<AdminDeps, 'blobs' | 'requireRole'>) {
  const { blobs } = deps;
  const { app, route } = adminRoutes(deps);

  route('post', '/chunks/missing', 'findMissingChunks', 'publisher', {
    summary: 'Which of these chunks the server lacks (upload only those)',
    request: jsonBody(MissingChunksBodySchema),
    responses: { 200: json(z.object({ missing: z.array(z.string()) }), 'Missing hashes') },
    handler: async (c) => c.json({ missing: await blobs.missing(c.req.valid('json').hashes) }, 200),
  });

  route('put', '/chunks/{sha256}', 'uploadChunk', 'publisher', {
    summary: 'Upload one chunk; its SHA-256 must match the path',
    maxBody: MAX_CHUNK_BODY,
    request: {
      params: z.object({ sha256: Sha256Hex }),
      body: { content: { 'application/octet-stream': { schema: BinarySchema } }, required: true },
    },
    responses: {
      201: json(z.object({ sha256: z.string(), size: z.number() }), 'Stored'),
      415: json(ErrorSchema, 'Not application/octet-stream'),
      422: json(ErrorSchema, 'The bytes do not hash to the path'),
    },
    handler: async (c) => {
      const { sha256 } = c.req.valid('param');
      if (!c.req.header('content-type')?.startsWith('application/octet-stream')) {
        throw new UnsupportedMediaTypeError('send the chunk as application/octet-stream');
      }
      // Streamed into the blob store as it arrives (a publish of 500 MB must not grow the server).
      const body = c.req.raw.body as AsyncIterable<Uint8Array> | null; // Node's ReadableStream is async-iterable
      if (!body) throw new ValidationError('empty chunk');
      let size: number;
      try {
        size = await blobs.putStream(sha256, body, MAX_CHUNK_BODY);
      } catch (error) {
        if (error instanceof HashMismatchError)
          throw new HashMismatchError(`the body does not hash to ${sha256}`);
        if (error instanceof LengthMismatchError) throw new ValidationError(error.message);
        throw error;
      }
      return c.json({ sha256, size }, 201);
    },
  });
  return app;
}
