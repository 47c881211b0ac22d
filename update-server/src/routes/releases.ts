import { z } from '@hono/zod-openapi';
import type { RequireRole } from '../auth/middleware.ts';
import { notFound } from '../http/api-errors.ts';
import type { RegistryService } from '../registry/service.ts';
import type { RegistryStore, ReleaseRecord } from '../storage/types.ts';
import { actor, adminRoutes, json, jsonBody } from './admin-route.ts';
import {
  ErrorSchema,
  PublishBodySchema,
  ReleaseParams,
  ReleaseSchema,
  ReleaseSummarySchema,
} from './api-schemas.ts';
import { Name } from './wire-schemas.ts';

export interface ReleaseRouteDeps {
  registry: RegistryStore;
  service: RegistryService;
  requireRole: RequireRole;
}

/** A release without its signed document and model card (what lists show). */
export function releaseSummary(record: ReleaseRecord) {
  const { signed: _signed, modelCard: _card, ...summary } = record;
  return summary;
}

/** `/v1/admin/releases`: register a publisher-signed release (publisher), list and read them (viewer). */
export function createReleaseRoutes(deps: ReleaseRouteDeps) {
  const { registry, service } = deps;
  const { app, route } = adminRoutes(deps.requireRole);

  app.openapi(
    route({
      operationId: 'registerRelease',
      method: 'post',
      path: '/releases',
      summary: 'Register a publisher-signed release whose chunks are uploaded',
      role: 'publisher',
      request: jsonBody(PublishBodySchema),
      responses: {
        201: json(ReleaseSummarySchema, 'Registered'),
        422: json(ErrorSchema, 'No trusted publisher signed it'),
      },
    }),
    async (c) => c.json(releaseSummary(await service.publishRelease(actor(c), c.req.valid('json'))), 201),
  );

  app.openapi(
    route({
      operationId: 'listReleases',
      method: 'get',
      path: '/releases',
      summary: 'Releases, newest first',
      role: 'viewer',
      request: { query: z.object({ model: Name.optional() }) },
      responses: { 200: json(z.object({ releases: z.array(ReleaseSummarySchema) }), 'Releases') },
    }),
    async (c) =>
      c.json(
        { releases: (await registry.listReleases(c.req.valid('query').model)).map(releaseSummary) },
        200,
      ),
  );

  app.openapi(
    route({
      operationId: 'getRelease',
      method: 'get',
      path: '/releases/{model}/{version}',
      summary: 'One release with its signed document, lineage and model card',
      role: 'viewer',
      request: { params: ReleaseParams },
      responses: { 200: json(ReleaseSchema, 'Release') },
    }),
    async (c) => {
      const { model, version } = c.req.valid('param');
      const record = await registry.getRelease(model, version);
      if (!record) throw notFound(`release ${model}@${version}`);
      return c.json({ ...record }, 200);
    },
  );
  return app;
}
