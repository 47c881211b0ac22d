import { z } from '@hono/zod-openapi';
import type { RequireRole } from '../auth/middleware.ts';
import { notFound } from '../http/api-errors.ts';
import type { RegistryService } from '../registry/service.ts';
import type { RegistryStore } from '../storage/types.ts';
import { actor, adminRoutes, json, jsonBody } from './admin-route.ts';
import {
  CreateRolloutBodySchema,
  ReasonBodySchema,
  RolloutIdParams,
  RolloutQuerySchema,
  RolloutSchema,
  ShareBodySchema,
} from './api-schemas.ts';

export interface RolloutRouteDeps {
  registry: RegistryStore;
  service: RegistryService;
  requireRole: RequireRole;
}

/** `/v1/admin/rollouts`: start, widen, promote and halt rollouts (operator); read them (viewer). */
export function createRolloutRoutes(deps: RolloutRouteDeps) {
  const { registry, service } = deps;
  const { app, route } = adminRoutes(deps.requireRole);

  app.openapi(
    route({
      operationId: 'createRollout',
      method: 'post',
      path: '/rollouts',
      summary: 'Start a rollout (replaces the running one of that model and channel)',
      role: 'operator',
      request: jsonBody(CreateRolloutBodySchema),
      responses: { 201: json(RolloutSchema, 'Started') },
    }),
    async (c) => c.json(await service.createRollout(actor(c), c.req.valid('json')), 201),
  );

  app.openapi(
    route({
      operationId: 'listRollouts',
      method: 'get',
      path: '/rollouts',
      summary: 'Rollouts, newest first',
      role: 'viewer',
      request: { query: RolloutQuerySchema },
      responses: { 200: json(z.object({ rollouts: z.array(RolloutSchema) }), 'Rollouts') },
    }),
    async (c) => {
      const { state, ...query } = c.req.valid('query');
      return c.json({ rollouts: await registry.listRollouts({ ...query, states: state && [state] }) }, 200);
    },
  );

  app.openapi(
    route({
      operationId: 'getRollout',
      method: 'get',
      path: '/rollouts/{id}',
      summary: 'One rollout',
      role: 'viewer',
      request: { params: RolloutIdParams },
      responses: { 200: json(RolloutSchema, 'Rollout') },
    }),
    async (c) => {
      const rollout = await registry.getRollout(c.req.valid('param').id);
      if (!rollout) throw notFound('rollout');
      return c.json(rollout, 200);
    },
  );

  app.openapi(
    route({
      operationId: 'setRolloutShare',
      method: 'post',
      path: '/rollouts/{id}/share',
      summary: 'Set the share of the fleet in the rollout (basis points)',
      role: 'operator',
      request: { params: RolloutIdParams, ...jsonBody(ShareBodySchema) },
      responses: { 200: json(RolloutSchema, 'Updated') },
    }),
    async (c) =>
      c.json(await service.setShare(actor(c), c.req.valid('param').id, c.req.valid('json').shareBps), 200),
  );

  app.openapi(
    route({
      operationId: 'promoteRollout',
      method: 'post',
      path: '/rollouts/{id}/promote',
      summary: "Make the rollout's release production",
      role: 'operator',
      request: { params: RolloutIdParams },
      responses: { 200: json(RolloutSchema, 'Promoted') },
    }),
    async (c) => c.json(await service.promote(actor(c), c.req.valid('param').id), 200),
  );

  app.openapi(
    route({
      operationId: 'haltRollout',
      method: 'post',
      path: '/rollouts/{id}/halt',
      summary: 'Halt the rollout: share 0, devices return to the control',
      role: 'operator',
      request: { params: RolloutIdParams, ...jsonBody(ReasonBodySchema) },
      responses: { 200: json(RolloutSchema, 'Halted') },
    }),
    async (c) =>
      c.json(await service.halt(actor(c), c.req.valid('param').id, c.req.valid('json').reason), 200),
  );
  return app;
}
