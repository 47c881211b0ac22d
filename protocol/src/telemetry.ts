import * as z from 'zod/mini';
import { BACKEND_FALLBACK_CODES, ERROR_CODES } from './errors.ts';
import { HISTOGRAM_BUCKETS } from './histogram.ts';
import { DEVICE_ID_PATTERN } from './install-key.ts';
import { MAX_OUTCOME_VALUE, MAX_OUTCOMES_PER_RECORD } from './quality.ts';
import { IsoTime, Name, SemVer } from './schema-primitives.ts';
import { DeviceSegmentSchema } from './segments.ts';

// Hard bounds: a device can never send a batch the server has to think twice about.
export const MAX_TELEMETRY_BATCH_BYTES = 256 * 1024;
export const MAX_RECORDS_PER_BATCH = 64;
const MAX_COUNT = 1_000_000_000;

const Count = z.int().check(z.minimum(0), z.maximum(MAX_COUNT));

export const HistogramSchema = z.record(z.string().check(z.regex(/^\d{1,3}$/)), Count).check(
  z.refine((h) => Object.keys(h).every((k) => Number(k) < HISTOGRAM_BUCKETS), 'bucket index out of range'),
  z.refine((h) => Object.keys(h).length <= HISTOGRAM_BUCKETS, 'too many buckets'),
);

export const BACKENDS = ['webgpu', 'wasm', 'webgl', 'cpu'] as const;
export type Backend = (typeof BACKENDS)[number];

export const FeatureCountsSchema = z.strictObject({
  name: Name,
  counts: z.array(Count).check(z.minLength(2), z.maxLength(64)),
});

/** How a shadow candidate agreed with the active release on the same inputs. */
export const ShadowReportSchema = z.strictObject({
  against: SemVer,
  compared: Count,
  /** Inputs where both sides fell on the same side of the decision threshold. */
  agreements: Count,
  /** Max absolute output difference per compared input, times 1000, bucketed like latency (so 1e-5 is the floor). */
  absDiff: HistogramSchema,
});

/**
 * The update pipeline on the device for one release: downloads (their bytes and time are the
 * record's downloadBytes and downloadMs), update failures by code, backend fallbacks when it
 * opened, times the guard after activation left it, and whether the origin's storage is
 * persisted. Every field is a count or an enum: bounded, and nothing identifying.
 */
export const UpdateReportSchema = z.strictObject({
  downloads: z.optional(Count),
  /** Downloads that reused chunks already stored (an interrupted download resumed, or shared chunks). */
  resumed: z.optional(Count),
  failures: z.optional(z.partialRecord(z.enum(ERROR_CODES), Count)),
  fallbacks: z.optional(z.partialRecord(z.enum(BACKEND_FALLBACK_CODES), Count)),
  guardFallbacks: z.optional(Count),
  /** navigator.storage.persisted() when the record was sealed. */
  storagePersisted: z.optional(z.boolean()),
});
export type UpdateReport = z.infer<typeof UpdateReportSchema>;

const ClassIndex = z.int().check(z.minimum(0), z.maximum(31));
const OutcomeSum = z
  .number()
  .check(
    z.refine(Number.isFinite, 'a finite number'),
    z.minimum(-MAX_COUNT * MAX_OUTCOME_VALUE),
    z.maximum(MAX_COUNT * MAX_OUTCOME_VALUE),
  );

/**
 * Ground truth the app reported (quality.ts): for a classifier, confusion counts over the
 * release's classes as [actual, predicted, count] cells, from `feedback(predictionId, { label })`;
 * per named outcome (`outcome('accepted', 1)`), count, sum and sum of squares. Counts only: no
 * input, no prediction id, no label text leaves the device.
 */
export const QualityReportSchema = z.strictObject({
  confusion: z.optional(z.array(z.tuple([ClassIndex, ClassIndex, Count])).check(z.maxLength(1024))),
  outcomes: z.optional(
    z
      .array(
        z.strictObject({
          name: Name,
          count: Count,
          sum: OutcomeSum,
          sumSq: OutcomeSum.check(z.minimum(0)),
        }),
      )
      .check(z.maxLength(MAX_OUTCOMES_PER_RECORD)),
  ),
});
export type QualityReport = z.infer<typeof QualityReportSchema>;

export const TelemetryRecordSchema = z
  .strictObject({
    model: Name,
    version: SemVer,
    backend: z.enum(BACKENDS),
    role: z.enum(['active', 'shadow']),
    inferences: Count,
    errors: z.partialRecord(z.enum(ERROR_CODES), Count),
    latencyMs: HistogramSchema,
    loadMs: z.optional(z.number().check(z.minimum(0), z.maximum(3_600_000))),
    downloadBytes: Count,
    downloadMs: z.number().check(z.minimum(0), z.maximum(86_400_000)),
    features: z.array(FeatureCountsSchema).check(z.maxLength(16)),
    shadow: z.optional(ShadowReportSchema),
    /** Which kind of device (segments.ts): optional, coarse, never identifying. */
    segment: z.optional(DeviceSegmentSchema),
    /** The update pipeline for this release on the device (optional: older runtimes omit it). */
    update: z.optional(UpdateReportSchema),
    /** Feedback and outcomes from the app (optional: older runtimes omit it). */
    quality: z.optional(QualityReportSchema),
  })
  .check(
    z.refine(
      (r) => (r.role === 'shadow') === (r.shadow !== undefined),
      'a shadow record carries a shadow report',
    ),
  );
export type TelemetryRecord = z.infer<typeof TelemetryRecordSchema>;

export const TelemetryBatchSchema = z.strictObject({
  schema: z.literal(1),
  /** Idempotency key: a retried batch carries the same id and is counted once. */
  batchId: z.uuid(),
  /**
   * The install's Ed25519 public key (see install-key.ts): random per install, never a
   * fingerprint. The batch's bytes are signed with its private key (TELEMETRY_SIGNATURE_HEADER).
   */
  deviceId: z.string().check(z.regex(DEVICE_ID_PATTERN, 'a device id is a base64url Ed25519 public key')),
  app: Name,
  channel: Name,
  runtimeVersion: SemVer,
  windowStart: IsoTime,
  windowEnd: IsoTime,
  /** Batches dropped on the device (queue full or too old) before this one was sent. */
  dropped: Count,
  records: z.array(TelemetryRecordSchema).check(z.minLength(1), z.maxLength(MAX_RECORDS_PER_BATCH)),
});
export type TelemetryBatch = z.infer<typeof TelemetryBatchSchema>;
