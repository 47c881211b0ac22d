import { MAX_TELEMETRY_BATCH_BYTES, Name, Sha256Hex } from '@edgeship/protocol';
import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { ErrorSchema } from './api-schemas.ts';

/**
 * Documents the routes that are not admin routes (devices' and operations') in the same OpenAPI
 * document. The document's server is /v1/admin; these operations name their own (OpenAPI 3.0
 * Operation Object `servers`), since `/chunks/{sha256}` exists under both prefixes.
 */
export function documentDeviceRoutes(
  app: Pick<OpenAPIHono, 'openAPIRegistry'>,
  has: { telemetry: boolean },
): void {
  const v1 = [{ url: '/v1' }];
  const root = [{ url: '/' }];
  const error = (description: string) => ({
    content: { 'application/json': { schema: ErrorSchema } },
    description,
  });
  const anyJson = (description: string) => ({
    content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
    description,
  });
  const rateLimited = { 429: error('Rate limited (Retry-After)') };

  app.openAPIRegistry.registerPath({
    method: 'get',
    path: '/apps/{app}/channels/{channel}/manifest',
    servers: v1,
    summary: 'The signed manifest of a channel (devices; strong ETag, 304 on If-None-Match)',
    request: {
      params: z.object({ app: Name, channel: Name }),
      headers: z.object({ 'if-none-match': z.string().optional() }),
    },
    responses: {
      200: anyJson('ManifestEnvelope (@edgeship/protocol), stored bytes'),
      304: { description: 'Not modified' },
      400: error('Malformed app or channel'),
      404: error('No manifest for that channel'),
      ...rateLimited,
    },
  });
  app.openAPIRegistry.registerPath({
    method: 'get',
    path: '/keyset',
    servers: v1,
    summary: 'The root-signed key set (online and publisher keys)',
    responses: { 200: anyJson('SignedKeySet') },
  });
  app.openAPIRegistry.registerPath({
    method: 'get',
    path: '/root',
    servers: v1,
    summary: "The pinned root's public keys and threshold (what an app embeds)",
    responses: { 200: anyJson('TrustedRoot') },
  });
  app.openAPIRegistry.registerPath({
    method: 'get',
    path: '/releases/by-hash/{sha256}',
    servers: v1,
    summary:
      'A signed release document by the SHA-256 its manifest names it by (immutable; devices fetch it when they download that release)',
    request: {
      params: z.object({ sha256: Sha256Hex }),
      headers: z.object({ 'if-none-match': z.string().optional() }),
    },
    responses: {
      200: anyJson('SignedRelease (@edgeship/protocol), canonical JSON: the bytes the hash covers'),
      304: { description: 'Not modified' },
      400: error('Malformed hash'),
      404: error('No such release document'),
      ...rateLimited,
    },
  });
  for (const method of ['get', 'head'] as const) {
    app.openAPIRegistry.registerPath({
      method,
      path: '/chunks/{sha256}',
      servers: v1,
      summary: 'A content-addressed chunk (immutable; one byte range with Range)',
      request: {
        params: z.object({ sha256: Sha256Hex }),
        headers: z.object({ range: z.string().optional(), 'if-none-match': z.string().optional() }),
      },
      responses: {
        200: { content: { 'application/octet-stream': { schema: z.any() } }, description: 'The bytes' },
        206: { content: { 'application/octet-stream': { schema: z.any() } }, description: 'A range' },
        304: { description: 'Not modified' },
        400: error('Malformed hash'),
        404: error('No such chunk'),
        416: error('Range not satisfiable (E_RANGE)'),
        ...rateLimited,
      },
    });
  }
  if (has.telemetry)
    app.openAPIRegistry.registerPath({
      method: 'post',
      path: '/telemetry',
      servers: v1,
      summary: `One telemetry batch (TelemetryBatch, @edgeship/protocol; at most ${MAX_TELEMETRY_BATCH_BYTES} bytes)`,
      request: {
        headers: z.object({ 'idempotency-key': z.string().optional() }),
        body: {
          content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
          required: true,
        },
      },
      responses: {
        202: anyJson('Accepted, or a duplicate of a counted batch'),
        400: error('E_BAD_JSON, E_VALIDATION'),
        413: error('E_TOO_LARGE'),
        415: error('Not application/json'),
        422: error('E_VALIDATION, E_TOO_OLD, E_FROM_FUTURE'),
        ...rateLimited,
      },
    });
  for (const [path, summary] of [
    ['/healthz', 'Liveness'],
    ['/readyz', 'Readiness: the database answers (503 E_NOT_READY when not)'],
  ] as const) {
    app.openAPIRegistry.registerPath({
      method: 'get',
      path,
      servers: root,
      summary,
      responses: { 200: anyJson('{ ok: true }') },
    });
  }
  app.openAPIRegistry.registerPath({
    method: 'get',
    path: '/metrics',
    servers: root,
    summary: 'Prometheus metrics (a viewer token when the server requires one: metricsAuth)',
    responses: {
      200: { content: { 'text/plain': { schema: z.string() } }, description: 'Exposition format' },
      401: error('No valid token (only with metricsAuth)'),
    },
  });
}
