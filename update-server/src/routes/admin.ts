import { Name, Sha256Hex } from '@edgeship/protocol';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { AuthVariables, RequireRole } from '../auth/middleware.ts';
import { ApiError, notFound } from '../http/api-error.ts';
import { limitBody } from '../http/body-limit.ts';
import { describeIssues } from '../http/errors.ts';
import type { RegistryService } from '../registry/service.ts';
import type { BlobStore, RegistryStore, ReleaseRecord } from '../storage/types.ts';
import {
  AuditEntrySchema,
  AuditQuerySchema,
  ChannelModelParams,
  CreateRolloutBodySchema,
  ErrorSchema,
  MAX_CHUNK_BODY,
  MAX_JSON_BODY,
  MissingChunksBodySchema,
  PromoteReleaseBodySchema,
  PublishBodySchema,
  ReasonBodySchema,
  ReleaseParams,
  ReleaseSummarySchema,
  RolloutIdParams,
  RolloutQuerySchema,
  RolloutSchema,
  ShareBodySchema,
} from './api-schemas.ts';

export interface AdminDeps {
  registry: RegistryStore;
  blobs: BlobStore;
  service: RegistryService;
  /** One authenticator for every admin route, so failed attempts are counted together. */
  requireRole: RequireRole;
}

type Env = { Variables: AuthVariables };

const jsonContent = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { 'application/json': { schema } },
  description,
});
const jsonBody = <T extends z.ZodType>(schema: T) => ({
  body: { content: { 'application/json': { schema } }, required: true },
});
const errorResponses = {
  400: jsonContent(ErrorSchema, 'Bad input (E_BAD_JSON, E_VALIDATION)'),
  401: jsonContent(ErrorSchema, 'Missing, unknown, expired or revoked token'),
  403: jsonContent(ErrorSchema, 'The token lacks the role'),
  404: jsonContent(ErrorSchema, 'No such resource'),
  409: jsonContent(ErrorSchema, 'Conflicts with the current state'),
  413: jsonContent(ErrorSchema, 'Body too large'),
  429: jsonContent(ErrorSchema, 'Rate limited'),
};
const security = [{ bearer: [] }];

export function releaseSummary(record: ReleaseRecord) {
  const { signed: _signed, modelCard: _card, ...summary } = record;
  return summary;
}

/** The admin API: releases, rollouts and their history, behind role-checked bearer tokens. */
export function createAdminRoutes(deps: AdminDeps) {
  const { registry, blobs, service, requireRole } = deps;
  const app = new OpenAPIHono<Env>({
    // Schema failures become the documented 400, with the first issues spelled out.
    defaultHook: (result) => {
      if (!result.success) throw new ApiError(400, 'E_VALIDATION', describeIssues(result.error.issues));
    },
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });

  const viewer = requireRole('viewer');
  const publisher = requireRole('publisher');
  const operator = requireRole('operator');
  const jsonLimit = limitBody(MAX_JSON_BODY);
  const actor = (c: { get(key: 'token'): AuthVariables['token'] }) => ({ name: c.get('token').name });

  app.openapi(
    createRoute({
      method: 'get',
      path: '/whoami',
      summary: 'The calling token',
      security,
      middleware: [viewer] as const,
      responses: {
        200: jsonContent(
          z.object({ name: z.string(), role: z.string(), expiresAt: z.string().nullable() }),
          'Token',
        ),
        ...errorResponses,
      },
    }),
    (c) => {
      const { name, role, expiresAt } = c.get('token');
      return c.json({ name, role, expiresAt }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/chunks/missing',
      summary: 'Which of these chunks the server lacks (upload only those)',
      security,
      middleware: [publisher, jsonLimit] as const,
      request: jsonBody(MissingChunksBodySchema),
      responses: {
        200: jsonContent(z.object({ missing: z.array(z.string()) }), 'Missing hashes'),
        ...errorResponses,
      },
    }),
    async (c) => c.json({ missing: await blobs.missing(c.req.valid('json').hashes) }, 200),
  );

  app.openapi(
    createRoute({
      method: 'put',
      path: '/chunks/{sha256}',
      summary: 'Upload one chunk; its SHA-256 must match the path',
      security,
      middleware: [publisher, limitBody(MAX_CHUNK_BODY)] as const,
      request: {
        params: z.object({ sha256: Sha256Hex }),
        body: { content: { 'application/octet-stream': { schema: z.any() } }, required: true },
      },
      responses: {
        201: jsonContent(z.object({ sha256: z.string(), size: z.number() }), 'Stored'),
        ...errorResponses,
        415: jsonContent(ErrorSchema, 'Not application/octet-stream'),
        422: jsonContent(ErrorSchema, 'The bytes do not hash to the path'),
      },
    }),
    async (c) => {
      const { sha256 } = c.req.valid('param');
      if (!c.req.header('content-type')?.startsWith('application/octet-stream')) {
        throw new ApiError(415, 'E_UNSUPPORTED_MEDIA_TYPE', 'send the chunk as application/octet-stream');
      }
      // Streamed into the blob store as it arrives (a publish of 500 MB must not grow the server).
      const body = c.req.raw.body as AsyncIterable<Uint8Array> | null; // Node's ReadableStream is async-iterable
      if (!body) throw new ApiError(400, 'E_VALIDATION', 'empty chunk');
      let size: number;
      try {
        size = await blobs.putStream(sha256, body, MAX_CHUNK_BODY);
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === 'E_HASH') throw new ApiError(422, 'E_HASH', `the body does not hash to ${sha256}`);
        if (code === 'E_LENGTH') throw new ApiError(400, 'E_VALIDATION', (error as Error).message);
        throw error;
      }
      return c.json({ sha256, size }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/releases',
      summary: 'Register a publisher-signed release whose chunks are uploaded',
      security,
      middleware: [publisher, jsonLimit] as const,
      request: jsonBody(PublishBodySchema),
      responses: {
        201: jsonContent(ReleaseSummarySchema, 'Registered'),
        ...errorResponses,
        422: jsonContent(ErrorSchema, 'No trusted publisher signed it'),
      },
    }),
    async (c) => c.json(releaseSummary(await service.publishRelease(actor(c), c.req.valid('json'))), 201),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/releases',
      summary: 'Releases, newest first',
      security,
      middleware: [viewer] as const,
      request: { query: z.object({ model: Name.optional() }) },
      responses: {
        200: jsonContent(z.object({ releases: z.array(ReleaseSummarySchema) }), 'Releases'),
        ...errorResponses,
      },
    }),
    async (c) =>
      c.json(
        { releases: (await registry.listReleases(c.req.valid('query').model)).map(releaseSummary) },
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/releases/{model}/{version}',
      summary: 'One release with its signed document, lineage and model card',
      security,
      middleware: [viewer] as const,
      request: { params: ReleaseParams },
      responses: { 200: jsonContent(z.record(z.string(), z.unknown()), 'Release'), ...errorResponses },
    }),
    async (c) => {
      const { model, version } = c.req.valid('param');
      const record = await registry.getRelease(model, version);
      if (!record) throw notFound(`release ${model}@${version}`);
      return c.json({ ...record }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/rollouts',
      summary: 'Start a rollout (replaces the running one of that model and channel)',
      security,
      middleware: [operator, jsonLimit] as const,
      request: jsonBody(CreateRolloutBodySchema),
      responses: { 201: jsonContent(RolloutSchema, 'Started'), ...errorResponses },
    }),
    async (c) => c.json(await service.createRollout(actor(c), c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/rollouts',
      summary: 'Rollouts, newest first',
      security,
      middleware: [viewer] as const,
      request: { query: RolloutQuerySchema },
      responses: {
        200: jsonContent(z.object({ rollouts: z.array(RolloutSchema) }), 'Rollouts'),
        ...errorResponses,
      },
    }),
    async (c) => {
      const { state, ...query } = c.req.valid('query');
      return c.json({ rollouts: await registry.listRollouts({ ...query, states: state && [state] }) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/rollouts/{id}',
      summary: 'One rollout',
      security,
      middleware: [viewer] as const,
      request: { params: RolloutIdParams },
      responses: { 200: jsonContent(RolloutSchema, 'Rollout'), ...errorResponses },
    }),
    async (c) => {
      const rollout = await registry.getRollout(c.req.valid('param').id);
      if (!rollout) throw notFound('rollout');
      return c.json(rollout, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/rollouts/{id}/share',
      summary: 'Set the share of the fleet in the rollout (basis points)',
      security,
      middleware: [operator, jsonLimit] as const,
      request: { params: RolloutIdParams, ...jsonBody(ShareBodySchema) },
      responses: { 200: jsonContent(RolloutSchema, 'Updated'), ...errorResponses },
    }),
    async (c) =>
      c.json(await service.setShare(actor(c), c.req.valid('param').id, c.req.valid('json').shareBps), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/rollouts/{id}/promote',
      summary: "Make the rollout's release production",
      security,
      middleware: [operator] as const,
      request: { params: RolloutIdParams },
      responses: { 200: jsonContent(RolloutSchema, 'Promoted'), ...errorResponses },
    }),
    async (c) => c.json(await service.promote(actor(c), c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/rollouts/{id}/halt',
      summary: 'Halt the rollout: share 0, devices return to the control',
      security,
      middleware: [operator, jsonLimit] as const,
      request: { params: RolloutIdParams, ...jsonBody(ReasonBodySchema) },
      responses: { 200: jsonContent(RolloutSchema, 'Halted'), ...errorResponses },
    }),
    async (c) =>
      c.json(await service.halt(actor(c), c.req.valid('param').id, c.req.valid('json').reason), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/apps/{app}/channels/{channel}/models/{model}/promote',
      summary: 'Promote a release directly (no rollout)',
      security,
      middleware: [operator, jsonLimit] as const,
      request: { params: ChannelModelParams, ...jsonBody(PromoteReleaseBodySchema) },
      responses: { 200: jsonContent(z.object({ production: z.string() }), 'Promoted'), ...errorResponses },
    }),
    async (c) => {
      const { release } = c.req.valid('json');
      await service.promoteRelease(actor(c), c.req.valid('param'), release);
      return c.json({ production: release }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/apps/{app}/channels/{channel}/models/{model}/rollback',
      summary: 'Roll production back to the release it replaced',
      security,
      middleware: [operator, jsonLimit] as const,
      request: { params: ChannelModelParams, ...jsonBody(ReasonBodySchema) },
      responses: { 200: jsonContent(z.object({ production: z.string() }), 'Rolled back'), ...errorResponses },
    }),
    async (c) =>
      c.json(await service.rollback(actor(c), c.req.valid('param'), c.req.valid('json').reason), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/apps/{app}/channels/{channel}',
      summary: "A channel's models: production, running rollout, manifest version",
      security,
      middleware: [viewer] as const,
      // Names, not any string: a NUL byte reaching PostgreSQL is an error there (a 500, once).
      request: { params: z.object({ app: Name, channel: Name }) },
      responses: { 200: jsonContent(z.record(z.string(), z.unknown()), 'Channel state'), ...errorResponses },
    }),
    async (c) => {
      const { app: appName, channel } = c.req.valid('param');
      const [models, rollouts, manifest] = await Promise.all([
        registry.listChannelModels(appName, channel),
        registry.listRollouts({ app: appName, channel, states: ['active'] }),
        registry.latestManifest(appName, channel),
      ]);
      return c.json(
        {
          app: appName,
          channel,
          manifestVersion: manifest?.version ?? null,
          models: models.map((m) => ({ ...m, rollout: rollouts.find((r) => r.model === m.model) ?? null })),
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/channels',
      summary: 'Every app and channel with a manifest',
      security,
      middleware: [viewer] as const,
      responses: {
        200: jsonContent(
          z.object({ channels: z.array(z.object({ app: z.string(), channel: z.string() })) }),
          'Channels',
        ),
        ...errorResponses,
      },
    }),
    async (c) => c.json({ channels: await registry.listChannels() }, 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/audit',
      summary: 'The audit trail, newest first (page with `before`)',
      security,
      middleware: [viewer] as const,
      request: { query: AuditQuerySchema },
      responses: {
        200: jsonContent(z.object({ entries: z.array(AuditEntrySchema) }), 'Entries'),
        ...errorResponses,
      },
    }),
    async (c) => c.json({ entries: await registry.listAudit(c.req.valid('query')) }, 200),
  );

  return app;
}
