import { MAX_ROLLOUT_ARMS } from '@edgeship/protocol';
import { z } from '@hono/zod-openapi';
import type { RequireRole } from '../auth/middleware.ts';
import type { Experiments } from '../experiment/experiments.ts';
import { actor, adminRoutes, json, jsonBody } from './admin-route.ts';
import { JsonObject, RolloutIdParams, ShareBps } from './api-schemas.ts';
import { Name, SemVer } from './wire-schemas.ts';

export interface ExperimentRouteDeps {
  experiments: Experiments;
  requireRole: RequireRole;
}

export const CreateExperimentBodySchema = z
  .strictObject({
    app: Name,
    channel: Name,
    model: Name,
    /** The treatment; the control is the channel's production release. */
    release: SemVer.optional(),
    /** Several treatments instead of `release` (one rollout, one arm each, signed into the manifest). */
    treatments: z.array(SemVer).min(1).max(MAX_ROLLOUT_ARMS).optional(),
    /** Share of the fleet on each treatment; default an equal split with the control. */
    shareBps: ShareBps.min(1).max(9999).optional(),
    metric: z.discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('outcome'), name: Name }),
      z.strictObject({ kind: z.literal('accuracy') }),
    ]),
    alpha: z.number().min(0.001).max(0.2).optional(),
    minimumEffect: z.number().positive().max(1e6),
    direction: z.enum(['increase', 'decrease']).optional(),
    minInstallsPerArm: z.int().min(2).max(100_000).optional(),
    sdPerInstall: z.number().positive().max(1e6).optional(),
    /** 'thompson': arms re-split each monitor pass by posterior probability of being best; no winner verdict. */
    allocation: z.enum(['fixed', 'thompson']).optional(),
    floorBps: ShareBps.min(1).max(5000).optional(),
  })
  .openapi('CreateExperiment');

const ExperimentQuerySchema = z.object({
  app: Name.optional(),
  channel: Name.optional(),
  model: Name.optional(),
});

/**
 * `/v1/admin/experiments`: start one (operator: a rollout of the treatment with a primary
 * metric, experiment/experiments.ts) and read its estimate, effect and verdict (viewer).
 */
export function createExperimentRoutes(deps: ExperimentRouteDeps) {
  const { app, route } = adminRoutes(deps);

  route('post', '/experiments', 'createExperiment', 'operator', {
    summary:
      'Start an experiment: the release (or up to 4 treatments, one arm each) against production, split by bucket, judged on a primary metric (replaces the running rollout)',
    request: jsonBody(CreateExperimentBodySchema),
    responses: { 201: json(JsonObject, 'Started, with its sample size and duration estimate') },
    handler: async (c) => c.json((await deps.experiments.start(actor(c), c.req.valid('json'))) as never, 201),
  });

  route('get', '/experiments', 'listExperiments', 'viewer', {
    summary: 'Experiments with their current verdicts',
    request: { query: ExperimentQuerySchema },
    responses: { 200: json(z.object({ experiments: z.array(JsonObject) }), 'Experiments') },
    handler: async (c) =>
      c.json({ experiments: (await deps.experiments.list(c.req.valid('query'))) as never[] }, 200),
  });

  route('get', '/experiments/{id}', 'getExperiment', 'viewer', {
    summary:
      'One experiment: estimate, effect with its always-valid confidence sequence, verdict, guardrails',
    request: { params: RolloutIdParams },
    responses: { 200: json(JsonObject, 'Experiment') },
    handler: async (c) => c.json((await deps.experiments.view(c.req.valid('param').id)) as never, 200),
  });
  return app;
}
