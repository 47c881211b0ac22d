import { z } from '@hono/zod-openapi';
import type { RequireRole } from '../auth/middleware.ts';
import type { RolloutScheduler } from '../canary/schedule.ts';
import { notFound } from '../http/api-errors.ts';
import { actor, adminRoutes, json, jsonBody, MONITOR_DISABLED, monitorPart } from './admin-route.ts';
import { RolloutIdParams } from './api-schemas.ts';

export interface RolloutScheduleRouteDeps {
  /** The canary monitor's scheduler; null when the monitor is disabled. */
  schedules: RolloutScheduler | null;
  requireRole: RequireRole;
}

const ScheduleBodySchema = z
  .strictObject({
    stagesBps: z.array(z.number().int().min(1).max(10_000)).min(2).max(20).openapi({
      description: 'ascending shares in basis points; one must be the current share; 10000 promotes',
    }),
    minStageMinutes: z.number().min(0).max(100_000),
    minSamples: z.number().int().min(0),
    segmentMinShare: z.number().min(0).max(1).optional().openapi({
      description:
        'a due stage holds (or widens only as far as needed) while a segment with at least this share of the installs has no verdict of its own; 0 turns it off. Default 0.05',
    }),
    segmentMaxWaitMinutes: z.number().min(0).max(1_000_000).optional().openapi({
      description:
        'how long a due stage holds for such segments before it widens anyway. Default 3 x minStageMinutes',
    }),
  })
  .openapi('RolloutScheduleBody');

const RolloutScheduleSchema = z
  .object({
    rolloutId: z.string(),
    stages: z.array(z.number()),
    minStageMs: z.number(),
    minSamples: z.number(),
    stage: z.number().openapi({ description: 'index into stages of the current share' }),
    stageStartedAt: z.string(),
    stageStartSamples: z.number(),
    state: z.enum(['running', 'blocked', 'completed', 'halted', 'ended']),
    note: z.string().nullable(),
    createdBy: z.string(),
    updatedAt: z.string(),
    segmentHold: z.object({ minShare: z.number(), maxWaitMs: z.number() }),
    fillBps: z.number().nullable().openapi({
      description:
        'a fill step: the share between this stage and the next that sizable segments need for a verdict',
    }),
    fillStartedAt: z.string().nullable().openapi({
      description: 'when the fill step began: it is held like a stage (minStageMs, minSamples) from then',
    }),
    fillStartSamples: z.number(),
    heldSince: z.string().nullable().openapi({ description: 'since when a due stage holds for segments' }),
  })
  .openapi('RolloutSchedule');

/**
 * `/v1/admin/rollouts/{id}/schedule`: a canary that widens itself stage by stage on healthy
 * verdicts (canary/schedule.ts); operator attaches, viewer reads.
 */
export function createRolloutScheduleRoutes(deps: RolloutScheduleRouteDeps) {
  const { app, route } = adminRoutes(deps);
  const schedules = () => monitorPart(deps.schedules, 'schedules');

  route('post', '/rollouts/{id}/schedule', 'scheduleRollout', 'operator', {
    summary: 'Put a running canary on a schedule of stages (widens itself on healthy verdicts)',
    request: { params: RolloutIdParams, ...jsonBody(ScheduleBodySchema) },
    responses: { 201: json(RolloutScheduleSchema, 'Scheduled'), ...MONITOR_DISABLED },
    handler: async (c) => {
      const { stagesBps, minStageMinutes, minSamples, segmentMinShare, segmentMaxWaitMinutes } =
        c.req.valid('json');
      const schedule = await schedules().attach(actor(c), c.req.valid('param').id, {
        stages: stagesBps,
        minStageMs: Math.round(minStageMinutes * 60_000),
        minSamples,
        segmentHold: {
          ...(segmentMinShare === undefined ? {} : { minShare: segmentMinShare }),
          ...(segmentMaxWaitMinutes === undefined
            ? {}
            : { maxWaitMs: Math.round(segmentMaxWaitMinutes * 60_000) }),
        },
      });
      return c.json(schedule, 201);
    },
  });

  route('get', '/rollouts/{id}/schedule', 'getRolloutSchedule', 'viewer', {
    summary: "A rollout's schedule: its stages, where it is, and why it stopped",
    request: { params: RolloutIdParams },
    responses: { 200: json(RolloutScheduleSchema, 'Schedule'), ...MONITOR_DISABLED },
    handler: async (c) => {
      const schedule = await schedules().get(c.req.valid('param').id);
      if (!schedule) throw notFound('schedule');
      return c.json(schedule, 200);
    },
  });
  return app;
}
