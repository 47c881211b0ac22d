import { z } from '@hono/zod-openapi';
import { notFound } from '../http/api-errors.ts';
import { type AdminDeps, actor, adminRoutes, json, jsonBody } from './admin-route.ts';
import {
  ReasonBodySchema,
  RolloutIdParams,
  RolloutSchema,
  RolloutStateSchema,
  ShareBps,
} from './api-schemas.ts';
import { Name, SemVer } from './wire-schemas.ts';

const CreateRolloutBodySchema = z
  .strictObject({
    app: Name,
    channel: Name,
    model: Name,
    release: SemVer,
    shareBps: ShareBps,
    mode: z.enum(['canary', 'shadow']).optional(),
    control: SemVer.nullable().optional(),
  })
  .openapi('CreateRollout');

const ShareBodySchema = z.strictObject({ shareBps: ShareBps });

const RolloutQuerySchema = z.object({
  app: Name.optional(),
  channel: Name.optional(),
  model: Name.optional(),
  state: RolloutStateSchema.optional(),
});

/** `/v1/admin/rollouts`: start, widen, promote and halt rollouts (operator); read them (viewer). */
export function createRolloutRoutes({ registry, service, ...deps }: AdminDeps) {
  const { app, route } = adminRoutes(deps);

  route('post', '/rollouts', 'createRollout', 'operator', {
    summary: 'Start a rollout (replaces the running one of that model and channel)',
    request: jsonBody(CreateRolloutBodySchema),
    responses: { 201: json(RolloutSchema, 'Started') },
    handler: async (c) => c.json(await service.createRollout(actor(c), c.req.valid('json')), 201),
  });

  route('get', '/rollouts', 'listRollouts', 'viewer', {
    summary: 'Rollouts, newest first',
    request: { query: RolloutQuerySchema },
    responses: { 200: json(z.object({ rollouts: z.array(RolloutSchema) }), 'Rollouts') },
    handler: async (c) => {
      const { state, ...query } = c.req.valid('query');
      return c.json({ rollouts: await registry.listRollouts({ ...query, states: state && [state] }) }, 200);
    },
  });

  route('get', '/rollouts/{id}', 'getRollout', 'viewer', {
    summary: 'One rollout',
    request: { params: RolloutIdParams },
    responses: { 200: json(RolloutSchema, 'Rollout') },
    handler: async (c) => {
      const rollout = await registry.getRollout(c.req.valid('param').id);
      if (!rollout) throw notFound('rollout');
      return c.json(rollout, 200);
    },
  });

  route('post', '/rollouts/{id}/share', 'setRolloutShare', 'operator', {
    summary: 'Set the share of the fleet in the rollout (basis points)',
    request: { params: RolloutIdParams, ...jsonBody(ShareBodySchema) },
    responses: { 200: json(RolloutSchema, 'Updated') },
    handler: async (c) =>
      c.json(await service.setShare(actor(c), c.req.valid('param').id, c.req.valid('json').shareBps), 200),
  });

  route('post', '/rollouts/{id}/promote', 'promoteRollout', 'operator', {
    summary: "Make the rollout's release production",
    request: { params: RolloutIdParams },
    responses: { 200: json(RolloutSchema, 'Promoted') },
    handler: async (c) => c.json(await service.promote(actor(c), c.req.valid('param').id), 200),
  });

  route('post', '/rollouts/{id}/halt', 'haltRollout', 'operator', {
    summary: 'Halt the rollout: share 0, devices return to the control',
    request: { params: RolloutIdParams, ...jsonBody(ReasonBodySchema) },
    responses: { 200: json(RolloutSchema, 'Halted') },
    handler: async (c) =>
      c.json(await service.halt(actor(c), c.req.valid('param').id, c.req.valid('json').reason), 200),
  });
  return app;
}
