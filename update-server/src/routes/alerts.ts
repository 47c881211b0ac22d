import { z } from '@hono/zod-openapi';
import type { ProductionAlerts } from '../alerts/production-alerts.ts';
import { ALERT_RULES, DEFAULT_ALERT_CONFIG } from '../alerts/rules.ts';
import type { RequireRole } from '../auth/middleware.ts';
import type { ChannelRef } from '../storage/types.ts';
import { actor, adminRoutes, json, jsonBody, MONITOR_DISABLED, monitorPart } from './admin-route.ts';
import { ChannelParams, JsonObject } from './api-schemas.ts';

export interface AlertRouteDeps {
  /** The canary monitor's production alerts; null when the monitor is disabled. */
  alerts: ProductionAlerts | null;
  requireRole: RequireRole;
}

const share = z.number().min(0).max(1);
const AlertThresholdsSchema = z
  .strictObject({
    errorRate: share.optional().openapi({ description: 'share of calls that failed' }),
    p95LatencyMs: z.number().positive().optional(),
    inputErrorShare: share.optional().openapi({ description: 'share of calls refused as E_INPUT' }),
    driftPsi: z.number().positive().optional().openapi({ description: 'PSI of the most drifted feature' }),
    accuracyDrop: share
      .optional()
      .openapi({ description: 'live accuracy below the published `accuracy` metric by more than this' }),
  })
  .openapi('AlertThresholds');

const AlertConfigBodySchema = z
  .strictObject({
    thresholds: AlertThresholdsSchema,
    windowMinutes: z.number().int().min(1).max(10_080).optional(),
    minSamples: z.number().int().min(1).optional(),
    retrainAfterMinutes: z.number().int().min(1).optional(),
  })
  .openapi('AlertConfigBody');

const AlertConfigSchema = z
  .object({
    thresholds: AlertThresholdsSchema,
    windowMinutes: z.number(),
    minSamples: z.number(),
    retrainAfterMinutes: z.number(),
  })
  .openapi('AlertConfig');

const AlertEpisodeSchema = z
  .object({
    app: z.string(),
    channel: z.string(),
    model: z.string(),
    rule: z.string().openapi({ description: `${ALERT_RULES.join(', ')}, or retrain` }),
    episode: z.string(),
    state: z.enum(['firing', 'resolved']),
    version: z.string(),
    firedAt: z.string(),
    resolvedAt: z.string().nullable(),
    evidence: JsonObject,
  })
  .openapi('AlertEpisode');

const ChannelAlertsSchema = z
  .object({
    app: z.string(),
    channel: z.string(),
    config: AlertConfigSchema.nullable(),
    updatedBy: z.string().nullable(),
    updatedAt: z.string().nullable(),
    episodes: z.array(AlertEpisodeSchema),
  })
  .openapi('ChannelAlerts');

/**
 * `/v1/admin/apps/{app}/channels/{channel}/alerts`: a channel's alert thresholds on its production
 * releases (operator sets, viewer reads) and their episodes, open and last resolved.
 */
export function createAlertRoutes(deps: AlertRouteDeps) {
  const { app, route } = adminRoutes(deps);
  const alerts = () => monitorPart(deps.alerts, 'alerts');
  const view = async ({ app: appName, channel }: ChannelRef) => {
    const a = alerts();
    const [record, episodes] = await Promise.all([
      a.store.config(appName, channel),
      a.store.episodes(appName, channel),
    ]);
    return {
      app: appName,
      channel,
      config: record ? { ...DEFAULT_ALERT_CONFIG, ...record.config } : null,
      updatedBy: record?.updatedBy ?? null,
      updatedAt: record?.updatedAt ?? null,
      episodes,
    };
  };

  route('get', '/apps/{app}/channels/{channel}/alerts', 'channelAlerts', 'viewer', {
    summary: "A channel's alert thresholds and alert episodes",
    request: { params: ChannelParams },
    responses: { 200: json(ChannelAlertsSchema, 'Alerts'), ...MONITOR_DISABLED },
    handler: async (c) => c.json(await view(c.req.valid('param')), 200),
  });

  route('put', '/apps/{app}/channels/{channel}/alerts', 'setChannelAlerts', 'operator', {
    summary: "Set a channel's alert thresholds on its production releases (audited)",
    request: { params: ChannelParams, ...jsonBody(AlertConfigBodySchema) },
    responses: { 200: json(ChannelAlertsSchema, 'Stored'), ...MONITOR_DISABLED },
    handler: async (c) => {
      const ref = c.req.valid('param');
      await alerts().setConfig(actor(c), ref.app, ref.channel, {
        ...DEFAULT_ALERT_CONFIG,
        ...c.req.valid('json'),
      });
      return c.json(await view(ref), 200);
    },
  });
  return app;
}
