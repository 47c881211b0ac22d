import type { TelemetryBatch } from '@edgeship/protocol';
import { FromFutureError, TooOldError } from '../http/api-errors.ts';

const DAY_MS = 86_400_000;

/**
 * How long the runtime's outbox keeps an unsent batch (runtime/src/telemetry/outbox.ts,
 * DEFAULT_OUTBOX_LIMITS.maxAgeMs; retention.test.ts keeps the two equal). A batch that can still
 * be in an outbox must never be refused as too old, so the retention has to outlast it.
 */
export const RUNTIME_OUTBOX_MAX_AGE_MS = 7 * DAY_MS;

/** How far a device clock may be off the server's, either way: a batch sealed later is refused. */
export const MAX_CLOCK_SKEW_MS = DAY_MS;

/**
 * Between the oldest batch time accepted and the oldest batch id kept: covers the rounding of
 * window_start (one aggregation window) and clocks of server processes that disagree.
 */
const PRUNE_SLACK_MS = DAY_MS;

export const DEFAULT_RETENTION_DAYS = 30;
/** As far back as GET /v1/admin/fleet reads (its MAX_RANGE_SEC). */
export const DEFAULT_AGGREGATE_RETENTION_DAYS = 90;

/**
 * Shortest retention that keeps de-duplication exact: a batch that left an outbox on its last day
 * (device clock behind by the skew) must still be accepted, with the skew and slack to spare.
 */
export const MIN_RETENTION_DAYS =
  (RUNTIME_OUTBOX_MAX_AGE_MS + 2 * MAX_CLOCK_SKEW_MS + PRUNE_SLACK_MS) / DAY_MS;

export interface RetentionSettings {
  /** Days batch ids and per-device rows are kept (ServerOptions.telemetryRetentionDays). */
  days?: number;
  /** Days per-release aggregates are kept (ServerOptions.telemetryAggregateRetentionDays). */
  aggregateDays?: number;
}

export interface RetentionPolicy {
  /** Batch ids (idempotency keys) and per-device rows (caps, device counts): kept this long. */
  perDeviceMs: number;
  /** Per-release aggregates (fleet view, canary, /metrics): kept this long. */
  aggregatesMs: number;
  /** Oldest batch accepted, by its windowEnd (when the device sealed it). */
  maxBatchAgeMs: number;
  /** Furthest a batch's windowEnd may be ahead of the server's clock. */
  maxBatchLeadMs: number;
}

/** Epoch seconds: rows whose window_start is earlier are pruned. */
export interface PruneCutoffs {
  perDeviceBefore: number;
  aggregatesBefore: number;
}

/**
 * Why a batch older than `maxBatchAgeMs` can never meet a pruned id: a batch accepted at server
 * time T had windowEnd ≤ T + skew, and its rows carry window_start > T − one window. They are
 * pruned only once window_start < now − retention, so by then its windowEnd is older than
 * now − retention + skew + one window, which is older than now − maxBatchAgeMs: a retry is
 * refused as too old instead of being counted a second time.
 *
 * Throws at start-up (a plain Error) when the settings cannot keep that promise.
 */
export function retentionPolicy(settings: RetentionSettings = {}, windowSec = 60): RetentionPolicy {
  const days = settings.days ?? DEFAULT_RETENTION_DAYS;
  if (!Number.isFinite(days) || days < MIN_RETENTION_DAYS) {
    throw new Error(
      `telemetryRetentionDays must be at least ${MIN_RETENTION_DAYS} (the runtime's outbox keeps a batch ` +
        `${RUNTIME_OUTBOX_MAX_AGE_MS / DAY_MS} days, plus clock skew both ways and a day of slack); got ${days}`,
    );
  }
  const aggregateDays = settings.aggregateDays ?? Math.max(DEFAULT_AGGREGATE_RETENTION_DAYS, days);
  if (!Number.isFinite(aggregateDays) || aggregateDays < days) {
    throw new Error(
      `telemetryAggregateRetentionDays must be at least telemetryRetentionDays (${days}), or the fleet ` +
        `view would count devices in windows whose traffic is gone; got ${aggregateDays}`,
    );
  }
  if (windowSec * 1000 >= PRUNE_SLACK_MS) {
    throw new Error(`the telemetry window (${windowSec} s) must be shorter than a day`);
  }
  const perDeviceMs = days * DAY_MS;
  return {
    perDeviceMs,
    aggregatesMs: aggregateDays * DAY_MS,
    maxBatchAgeMs: perDeviceMs - MAX_CLOCK_SKEW_MS - PRUNE_SLACK_MS,
    maxBatchLeadMs: MAX_CLOCK_SKEW_MS,
  };
}

/**
 * Refuses a batch sealed too long ago to be de-duplicated safely, or ahead of the server's clock
 * by more than the skew bound. Both are permanent (422): the device drops the batch. This is
 * checked before the batch id is looked up, so the answer never depends on whether the pruner
 * has run yet.
 */
export function checkBatchTime(batch: TelemetryBatch, nowMs: number, policy: RetentionPolicy): void {
  const sealedAt = Date.parse(batch.windowEnd);
  if (sealedAt > nowMs + policy.maxBatchLeadMs) {
    throw new FromFutureError(
      `windowEnd ${batch.windowEnd} is more than ${hours(policy.maxBatchLeadMs)} h ahead of the server's ` +
        `clock (${new Date(nowMs).toISOString()}): check the device's clock`,
    );
  }
  if (sealedAt < nowMs - policy.maxBatchAgeMs) {
    throw new TooOldError(
      `windowEnd ${batch.windowEnd} is more than ${hours(policy.maxBatchAgeMs)} h before the server's ` +
        `clock (${new Date(nowMs).toISOString()}): too old to be told apart from a batch already counted`,
    );
  }
}

/** What the pruner deletes at `nowMs`. */
export function pruneCutoffs(policy: RetentionPolicy, nowMs: number): PruneCutoffs {
  return {
    perDeviceBefore: Math.floor((nowMs - policy.perDeviceMs) / 1000),
    aggregatesBefore: Math.floor((nowMs - policy.aggregatesMs) / 1000),
  };
}

const hours = (ms: number) => Math.round(ms / 3_600_000);
