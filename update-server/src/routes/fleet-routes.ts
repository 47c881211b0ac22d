import { z } from '@hono/zod-openapi';
import type { RequireRole } from '../auth/middleware.ts';
import type { CanaryMonitor } from '../canary/monitor.ts';
import { ValidationError } from '../http/api-errors.ts';
import type { RegistryStore } from '../storage/types.ts';
import { fleetReport } from '../telemetry/fleet-report.ts';
import type { TelemetryService } from '../telemetry/service.ts';
import { adminRoutes, json } from './admin-route.ts';
import { ErrorSchema, JsonObject, MAX_TIME_MS } from './api-schemas.ts';
import { Name } from './wire-schemas.ts';

export interface FleetDeps {
  registry: RegistryStore;
  telemetry: TelemetryService;
  canary: CanaryMonitor | null;
  requireRole: RequireRole;
  now?: () => Date;
}

const MAX_RANGE_SEC = 90 * 86_400;
const MAX_WINDOWS = 500;
const DEFAULT_RANGE_SEC = 3600;

// Bounded, so no arithmetic below reaches a time Date cannot hold (a RangeError, once a 500).
const IsoOrEpoch = z
  .string()
  .max(40)
  .refine((s) => {
    const ms = parse(s);
    return Number.isFinite(ms) && ms >= 0 && ms <= MAX_TIME_MS;
  }, 'an ISO-8601 time or epoch seconds, from 1970 to 2100');

export const FleetQuerySchema = z.object({
  app: Name,
  channel: Name,
  model: Name.optional(),
  since: IsoOrEpoch.optional(),
  until: IsoOrEpoch.optional(),
  /** Seconds per window of the time series (rounded up to the aggregation window). */
  step: z.coerce.number().int().min(1).max(MAX_RANGE_SEC).optional(),
  /** Seconds after a release becomes a device's target before a device not on it counts as stuck. */
  grace: z.coerce.number().int().min(0).max(MAX_RANGE_SEC).optional(),
});

// Epoch seconds, or an ISO-8601 date or date-time; not whatever else Date.parse guesses at ("-1").
const EPOCH_SECONDS = /^\d{1,12}$/;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$/;

function parse(s: string): number {
  if (EPOCH_SECONDS.test(s)) return Number(s) * 1000;
  return ISO_8601.test(s) ? Date.parse(s) : Number.NaN;
}

/** `GET /v1/admin/fleet` (viewer): what the fleet runs and how it behaves, from the telemetry aggregates. */
export function createFleetRoutes(deps: FleetDeps) {
  const now = deps.now ?? (() => new Date());
  const { app, route } = adminRoutes(deps);
  route('get', '/fleet', 'getFleet', 'viewer', {
    summary:
      'Versions in use and their share of devices, latency p50/p95/p99, error rates, drift per feature, shadow agreement, over time',
    request: { query: FleetQuerySchema },
    responses: {
      200: json(JsonObject, 'Fleet'),
      400: json(ErrorSchema, 'Bad query (E_VALIDATION)'),
    },
    handler: async (c) => {
      const query = c.req.valid('query');
      const windowSec = deps.telemetry.windowSec;
      const untilMs = query.until ? parse(query.until) : now().getTime();
      const sinceMs = query.since ? parse(query.since) : untilMs - DEFAULT_RANGE_SEC * 1000;
      if (sinceMs >= untilMs) throw new ValidationError('since must be before until');
      if (untilMs - sinceMs > MAX_RANGE_SEC * 1000) {
        throw new ValidationError(`at most ${MAX_RANGE_SEC / 86_400} days at a time`);
      }
      const since = Math.floor(sinceMs / 1000 / windowSec) * windowSec;
      const until = Math.ceil(untilMs / 1000 / windowSec) * windowSec;
      const range = until - since;
      const wanted = Math.max(query.step ?? windowSec, Math.ceil(range / MAX_WINDOWS));
      const stepSec = Math.ceil(wanted / windowSec) * windowSec;
      const report = await fleetReport(deps.telemetry, deps.registry, deps.canary, {
        app: query.app,
        channel: query.channel,
        model: query.model,
        since,
        until,
        stepSec,
        stuckGraceSec: query.grace,
      });
      return c.json(report as Record<string, unknown>, 200);
    },
  });
  return app;
}
