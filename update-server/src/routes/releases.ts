import { z } from '@hono/zod-openapi';
import { notFound } from '../http/api-errors.ts';
import type { ReleaseRecord } from '../storage/types.ts';
import { type AdminDeps, actor, adminRoutes, json, jsonBody } from './admin-route.ts';
import { ErrorSchema, ReleaseParams, Utf8Text } from './api-schemas.ts';
import { Name, SignedRelease } from './wire-schemas.ts';

const LineageSchema = z.strictObject({
  sourceCommit: z.string().max(64).optional(),
  datasetHash: z.string().max(128).optional(),
  parameters: z.record(z.string().max(64), z.unknown()).openapi({ additionalProperties: true }).optional(),
  parent: z.string().max(130).optional(),
});

const PublishBodySchema = z
  .strictObject({
    release: SignedRelease,
    metrics: z.record(z.string().max(64), z.number()).optional(),
    lineage: LineageSchema.optional(),
    modelCard: Utf8Text(64 * 1024).optional(),
  })
  .openapi('PublishRelease');

const ReleaseSummarySchema = z
  .object({
    model: z.string(),
    version: z.string(),
    format: z.enum(['onnx', 'tfjs']),
    stage: z.enum(['staging', 'production', 'archived']),
    totalBytes: z.number(),
    metrics: z.record(z.string(), z.number()),
    lineage: LineageSchema,
    createdBy: z.string(),
    createdAt: z.string(),
  })
  .openapi('ReleaseSummary');

/** One release in full: its summary, the signed document as uploaded, and its model card. */
const ReleaseSchema = ReleaseSummarySchema.extend({
  signed: SignedRelease,
  modelCard: z.string(),
}).openapi('Release');

/** A release without its signed document and model card (what lists show). */
export function releaseSummary(record: ReleaseRecord) {
  const { signed: _signed, modelCard: _card, ...summary } = record;
  return summary;
}

/** `/v1/admin/releases`: register a publisher-signed release (publisher), list and read them (viewer). */
export function createReleaseRoutes({ registry, service, ...deps }: AdminDeps) {
  const { app, route } = adminRoutes(deps);

  route('post', '/releases', 'registerRelease', 'publisher', {
    summary: 'Register a publisher-signed release whose chunks are uploaded',
    request: jsonBody(PublishBodySchema),
    responses: {
      201: json(ReleaseSummarySchema, 'Registered'),
      422: json(ErrorSchema, 'No trusted publisher signed it'),
    },
    handler: async (c) =>
      c.json(releaseSummary(await service.publishRelease(actor(c), c.req.valid('json'))), 201),
  });

  route('get', '/releases', 'listReleases', 'viewer', {
    summary: 'Releases, newest first',
    request: { query: z.object({ model: Name.optional() }) },
    responses: { 200: json(z.object({ releases: z.array(ReleaseSummarySchema) }), 'Releases') },
    handler: async (c) =>
      c.json(
        { releases: (await registry.listReleases(c.req.valid('query').model)).map(releaseSummary) },
        200,
      ),
  });

  route('get', '/releases/{model}/{version}', 'getRelease', 'viewer', {
    summary: 'One release with its signed document, lineage and model card',
    request: { params: ReleaseParams },
    responses: { 200: json(ReleaseSchema, 'Release') },
    handler: async (c) => {
      const { model, version } = c.req.valid('param');
      const record = await registry.getRelease(model, version);
      if (!record) throw notFound(`release ${model}@${version}`);
      return c.json({ ...record }, 200);
    },
  });
  return app;
}
