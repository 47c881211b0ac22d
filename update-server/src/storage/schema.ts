import type { ColumnType, Generated } from 'kysely';
import type { AuditEntry, ChannelModelRef, ChannelRef } from './types.ts';

/**
 * The registry's tables as Kysely sees them. Columns are snake_case; timestamps are ISO-8601 text
 * and JSON is text (parsed in registry.ts), so both dialects store and return the same values.
 */

/** A bigint column: pg returns int8 as a string (it may exceed 2^53), better-sqlite3 a number. */
type Int8 = ColumnType<number | string, number, number>;
/** An identity column: the database assigns it, nobody writes it. */
type Identity = ColumnType<number | string, never, never>;

export interface ReleasesTable {
  model: string;
  version: string;
  format: string;
  stage: string;
  /** JSON: the SignedRelease exactly as uploaded. */
  signed: string;
  total_bytes: Int8;
  /** JSON: Record<string, number>. */
  metrics: string;
  /** JSON: Lineage. */
  lineage: string;
  model_card: string;
  created_by: string;
  created_at: string;
}

export interface ChannelModelsTable extends ChannelModelRef {
  production: string | null;
  previous_production: string | null;
  updated_at: string;
}

/** One row per app/channel, the row `lockChannel` locks on PostgreSQL. */
export interface ChannelsTable extends ChannelRef {
  created_at: string;
}

export interface RolloutsTable extends ChannelModelRef {
  id: string;
  release: string;
  control: string | null;
  mode: string;
  share_bps: number;
  salt: string;
  state: string;
  reason: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
  /** JSON ExcludedSegment[] (0009). */
  excluded_segments: Generated<string>;
  /** JSON RolloutArm[] (0014); '[]': one arm, `release` at `share_bps`. */
  arms: Generated<string>;
}

export interface AuditTable extends Omit<AuditEntry, 'id' | 'details'> {
  id: Identity;
  /** JSON: Record<string, unknown>. */
  details: string;
}

export interface ManifestsTable {
  app: string;
  channel: string;
  version: number;
  body: string;
  etag: string;
  created_at: string;
}

export interface TokensTable {
  id: string;
  name: string;
  role: string;
  hash: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

/** Chunk bytes for the PostgreSQL blob store (the SQLite deployment keeps them as files). */
export interface ChunksTable {
  sha256: string;
  size: number;
  bytes: ColumnType<Uint8Array, Uint8Array, never>;
}

/** One row per accepted telemetry batch: its idempotency key (a retry finds it and is not counted). */
export interface TelemetryBatchesTable {
  batch_id: string;
  device_id: string;
  app: string;
  channel: string;
  /** Epoch seconds of the server-side window the batch was counted in. */
  window_start: Int8;
  records: number;
  inferences: Int8;
  /** Batches the device dropped (queue full or too old) before sending this one. */
  dropped: Int8;
  received_at: string;
}

/**
 * What one device contributed in one window: the per-device cap reads this, and which releases it
 * ran then (distinct counts give each version's share).
 */
export interface TelemetryDeviceWindowsTable {
  app: string;
  channel: string;
  device_id: string;
  window_start: Int8;
  batches: number;
  inferences: Int8;
  /** JSON array of [model, version, role], each once (migration 0017; it was `telemetry_devices`). */
  releases: string;
}

/** Sums per release × backend × role × window; JSON columns are merged by the telemetry writer. */
export interface TelemetryAggregatesTable extends ChannelModelRef {
  version: string;
  backend: string;
  role: string;
  window_start: Int8;
  batches: Int8;
  inferences: Int8;
  errors: Int8;
  /** JSON: Record<ErrorCode, number>. */
  errors_by_code: string;
  /** JSON: Histogram (log buckets, see @edgeship/protocol histogram.ts). */
  latency: string;
  load_ms_sum: number;
  load_count: Int8;
  download_bytes: Int8;
  download_ms_sum: number;
  /** JSON: Record<feature name, counts per bin>. */
  features: string;
  /** JSON: Record<active version compared against, { compared, agreements, absDiff }>. */
  shadow: string;
  /** JSON: PipelineStats (telemetry/aggregate.ts); '{}' on rows from before migration 0006. */
  pipeline: Generated<string>;
  /** JSON: QualityStats (telemetry/aggregate.ts): confusion counts and outcome sums; migration 0011. */
  quality: Generated<string>;
}

/** Every install (device public key) the telemetry ingest has seen, first time and network. */
export interface TelemetryInstallsTable {
  device_id: string;
  /** /24 or /48 (telemetry/network-prefix.ts). */
  prefix: string;
  first_seen_ms: Int8;
  /** Refreshed at most daily; the pruner forgets installs silent for the per-device retention. */
  last_seen_ms: Int8;
}

/** Per rollout, arm ('canary' | 'control') and install: what the canary analysis counts. */
export interface CanaryEvidenceTable {
  rollout_id: string;
  arm: string;
  device_id: string;
  prefix: string;
  inferences: Int8;
  errors: Int8;
  /** JSON: Histogram. */
  latency: string;
  /** JSON: Record<feature name, counts per bin>. */
  features: string;
  /** JSON: SegmentValues of the install's latest record (0005); null on older rows. */
  segment: string | null;
  /** JSON: QualityStats of the install (feedback, outcomes) for experiments (0012). */
  quality: Generated<string>;
  /** The rollout's change number of the transaction that last wrote this row (0013; 0 on older rows). */
  seq: Int8;
}

/** An experiment's design on top of its (canary-mode) rollout (experiment/experiments.ts, 0012). */
export interface ExperimentsTable {
  rollout_id: string;
  /** JSON: ExperimentSpec (metric, design, estimate before start). */
  spec: string;
  created_at: string;
}

/** The last verdict per rollout and kind, written by the leader's canary monitor (0006). */
export interface CanaryVerdictsTable {
  rollout_id: string;
  /** 'canary' (CanaryVerdict) or 'shadow' (ShadowVerdict). */
  kind: string;
  decision: string;
  /** JSON: the whole verdict, reasons and evidence. */
  verdict: string;
  /** ISO 8601. */
  judged_at: string;
}

/** One approval of a release for one channel (0007). */
export interface ReleaseApprovalsTable extends ChannelModelRef {
  version: string;
  approver: string;
  approved_at: string;
}

/** A channel's promotion policy (0007). */
export interface ChannelPoliciesTable extends ChannelRef {
  /** JSON: ChannelPolicy. */
  policy: string;
  updated_by: string;
  updated_at: string;
}

/** Alert thresholds of one channel (alerts/config.ts), JSON. */
export interface AlertConfigsTable extends ChannelRef {
  config: string;
  updated_by: string;
  updated_at: string;
}

/** The last episode of one alert rule on one channel's model: open (firing) or resolved. */
export interface AlertEpisodesTable extends ChannelModelRef {
  rule: string;
  /** A fresh id per episode: the webhook's dedup key, and what retrain.suggested remembers. */
  episode: string;
  state: string;
  version: string;
  fired_at: string;
  resolved_at: string | null;
  /** JSON: the evidence it fired (or resolved) on. */
  evidence: string;
}

/** A rollout's schedule of stages (canary/schedule.ts). */
export interface RolloutSchedulesTable {
  rollout_id: string;
  /** JSON: shares in basis points, ascending. */
  stages: string;
  min_stage_ms: Int8;
  min_samples: Int8;
  /** Index into stages of the share the rollout is at. */
  stage: number;
  stage_started_at: string;
  /** Canary inferences counted when the stage began (the stage's samples are the difference). */
  stage_start_samples: Int8;
  state: string;
  note: string | null;
  created_by: string;
  updated_at: string;
  /** JSON: the segment hold's policy and state (canary/schedule.ts SegmentHold); '{}' is the defaults. */
  segment_hold: string;
}

/** A webhook event awaiting delivery, or delivered (canary/webhook-outbox.ts), times in ms (0015). */
export interface WebhookDeliveriesTable {
  /** The delivery id: the body's `deliveryId` and the signed `webhook-id`. */
  id: string;
  event: string;
  /** The exact JSON sent at every attempt. */
  body: string;
  created_ms: Int8;
  attempts: number;
  next_attempt_ms: Int8;
  delivered_ms: Int8 | null;
  gave_up_ms: Int8 | null;
  last_error: string | null;
}

export interface Database {
  releases: ReleasesTable;
  channel_models: ChannelModelsTable;
  channels: ChannelsTable;
  rollouts: RolloutsTable;
  audit: AuditTable;
  manifests: ManifestsTable;
  tokens: TokensTable;
  chunks: ChunksTable;
  telemetry_batches: TelemetryBatchesTable;
  telemetry_device_windows: TelemetryDeviceWindowsTable;
  telemetry_aggregates: TelemetryAggregatesTable;
  telemetry_installs: TelemetryInstallsTable;
  canary_evidence: CanaryEvidenceTable;
  canary_verdicts: CanaryVerdictsTable;
  release_approvals: ReleaseApprovalsTable;
  channel_policies: ChannelPoliciesTable;
  alert_configs: AlertConfigsTable;
  alert_episodes: AlertEpisodesTable;
  rollout_schedules: RolloutSchedulesTable;
  experiments: ExperimentsTable;
  webhook_deliveries: WebhookDeliveriesTable;
}

export type DialectName = 'sqlite' | 'postgres';
