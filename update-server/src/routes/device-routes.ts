import { MAX_TELEMETRY_BATCH_BYTES } from '@edgeship/protocol';
import { createRoute, type OpenAPIHono, type RouteConfig, z } from '@hono/zod-openapi';
import { BinarySchema, ErrorSchema } from './api-schemas.ts';
import {
  ManifestEnvelope,
  Name,
  Sha256Hex,
  SignedKeySet,
  SignedRelease,
  TelemetryBatch,
  TrustedRoot,
} from './wire-schemas.ts';

/**
 * The routes that are not admin routes (devices' and operations'), as definitions for the same
 * OpenAPI document. They are served by plain Hono handlers (public.ts, telemetry.ts, app.ts), not
 * through OpenAPIHono's validators: the manifest check must parse nothing it does not need.
 * openapi.test.ts checks every route the app serves is defined here or in an admin module.
 * The document's server is /v1/admin; these operations name their own (OpenAPI 3.0 Operation
 * Object `servers`), since `/chunks/{sha256}` exists under both prefixes. `security: []`: anyone.
 */
const v1 = [{ url: '/v1' }];
const root = [{ url: '/' }];
const error = (description: string) => ({
  content: { 'application/json': { schema: ErrorSchema } },
  description,
});
const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { 'application/json': { schema } },
  description,
});
const bytes = (description: string) => ({
  content: { 'application/octet-stream': { schema: BinarySchema } },
  description,
});
const rateLimited = { 429: error('Rate limited (Retry-After)') };
const anyone: [] = [];

/** A GET under /v1 that anyone may make: what devices read. */
const publicGet = (config: Omit<RouteConfig, 'method' | 'servers' | 'security'>) =>
  createRoute({ ...config, method: 'get', servers: v1, security: anyone });

/** The request and answers of a signed document a device revalidates by its ETag. */
const revalidated = (
  params: z.ZodObject,
  ok: ReturnType<typeof json>,
  malformed: string,
  missing: string,
) => ({
  request: { params, headers: z.object({ 'if-none-match': z.string().optional() }) },
  responses: {
    200: ok,
    304: { description: 'Not modified' },
    400: error(malformed),
    404: error(missing),
    ...rateLimited,
  },
});

export const manifestRoute = publicGet({
  operationId: 'getManifest',
  path: '/apps/{app}/channels/{channel}/manifest',
  summary: 'The signed manifest of a channel (devices; strong ETag, 304 on If-None-Match)',
  ...revalidated(
    z.object({ app: Name, channel: Name }),
    json(ManifestEnvelope, 'The manifest envelope, as stored and signed'),
    'Malformed app or channel',
    'No manifest for that channel',
  ),
});

export const keySetRoute = publicGet({
  operationId: 'getKeySet',
  path: '/keyset',
  summary: 'The root-signed key set (online and publisher keys)',
  responses: { 200: json(SignedKeySet, 'The signed key set') },
});

export const rootRoute = publicGet({
  operationId: 'getRoot',
  path: '/root',
  summary: "The pinned root's public keys and threshold (what an app embeds)",
  responses: { 200: json(TrustedRoot, 'The trusted root') },
});

export const releaseDocumentRoute = publicGet({
  operationId: 'getReleaseDocument',
  path: '/releases/by-hash/{sha256}',
  summary:
    'A signed release document by the SHA-256 its manifest names it by (immutable; devices fetch it when they download that release)',
  ...revalidated(
    z.object({ sha256: Sha256Hex }),
    json(SignedRelease, 'The signed release, canonical JSON: the bytes the hash covers'),
    'Malformed hash',
    'No such release document',
  ),
});

const chunkRoute = (method: 'get' | 'head', operationId: string) =>
  createRoute({
    operationId,
    method,
    path: '/chunks/{sha256}',
    servers: v1,
    security: anyone,
    summary: 'A content-addressed chunk (immutable; one byte range with Range)',
    request: {
      params: z.object({ sha256: Sha256Hex }),
      headers: z.object({ range: z.string().optional(), 'if-none-match': z.string().optional() }),
    },
    responses: {
      200: bytes('The bytes'),
      206: bytes('A range'),
      304: { description: 'Not modified' },
      400: error('Malformed hash'),
      404: error('No such chunk'),
      416: error('Range not satisfiable (E_RANGE)'),
      ...rateLimited,
    },
  });
export const chunkRoutes = [chunkRoute('get', 'getChunk'), chunkRoute('head', 'headChunk')];

export const telemetryRoute = createRoute({
  operationId: 'sendTelemetry',
  method: 'post',
  path: '/telemetry',
  servers: v1,
  security: anyone,
  summary: `One telemetry batch, signed by its install's key (at most ${MAX_TELEMETRY_BATCH_BYTES} bytes)`,
  request: {
    headers: z.object({
      'idempotency-key': z.string().optional(),
      'edgeship-signature': z.string().optional(),
    }),
    body: { content: { 'application/json': { schema: TelemetryBatch } }, required: true },
  },
  responses: {
    202: json(
      z.object({ batchId: z.string(), status: z.enum(['accepted', 'duplicate']) }),
      'Accepted, or a duplicate of a counted batch',
    ),
    400: error('E_BAD_JSON, E_VALIDATION'),
    401: error('E_SIGNATURE: no valid Edgeship-Signature'),
    413: error('E_TOO_LARGE'),
    415: error('Not application/json'),
    422: error('E_VALIDATION, E_TOO_OLD, E_FROM_FUTURE'),
    ...rateLimited,
  },
});

const Ok = z.object({ ok: z.literal(true) });

export const operationRoutes = [
  createRoute({
    operationId: 'getHealth',
    method: 'get',
    path: '/healthz',
    servers: root,
    security: anyone,
    summary: 'Liveness',
    responses: { 200: json(Ok, 'Alive') },
  }),
  createRoute({
    operationId: 'getReadiness',
    method: 'get',
    path: '/readyz',
    servers: root,
    security: anyone,
    summary: 'Readiness: the database answers',
    responses: { 200: json(Ok, 'Ready'), 503: error('E_NOT_READY: the database does not answer') },
  }),
  createRoute({
    operationId: 'getMetrics',
    method: 'get',
    path: '/metrics',
    servers: root,
    summary: 'Prometheus metrics (a viewer token when the server requires one: metricsAuth)',
    security: [{}, { bearer: [] }],
    responses: {
      200: { content: { 'text/plain': { schema: z.string() } }, description: 'Exposition format' },
      401: error('No valid token (only with metricsAuth)'),
    },
  }),
];

/** Adds the device and operations routes to an app's OpenAPI document. */
export function documentDeviceRoutes(
  app: Pick<OpenAPIHono, 'openAPIRegistry'>,
  has: { telemetry: boolean },
): void {
  const routes = [
    manifestRoute,
    keySetRoute,
    rootRoute,
    releaseDocumentRoute,
    ...chunkRoutes,
    ...(has.telemetry ? [telemetryRoute] : []),
    ...operationRoutes,
  ];
  for (const route of routes) app.openAPIRegistry.registerPath(route);
}
