import {
  BACKEND_FALLBACK_CODES,
  BACKENDS,
  BROWSER_FAMILIES,
  DEVICE_CLASSES,
  DEVICE_ID_PATTERN,
  ERROR_CODES,
  HISTOGRAM_BUCKETS,
  IsoTime,
  MAX_OUTCOME_VALUE,
  MAX_OUTCOMES_PER_RECORD,
  MAX_RECORDS_PER_BATCH,
  Name,
  OS_FAMILIES,
  SemVer,
  type TelemetryBatch,
  TelemetryBatchSchema,
} from '@edgeship/protocol';
import type * as z from 'zod/mini';

/**
 * The telemetry batch check of the ingest route: `TelemetryBatchSchema.safeParse` (protocol's
 * zod/mini schema, the one definition) with a fast path in front. The fast path answers only
 * "certainly valid": then the parsed JSON is the batch (the schema has no transforms or defaults,
 * so zod's output is a copy of its input). Anything else goes to zod, which decides and writes
 * the error, so a refusal reads as before. zod/mini walks the schema per value (~30 µs per
 * record on the development machine, the largest cost of a fleet batch after the signature);
 * the fast path is a few µs per record. `batch-check.test.ts` checks it against the schema on
 * generated and mutated batches: it accepts exactly what the schema accepts.
 *
 * Leaf strings are checked by protocol's own schemas, and remembered: names, versions and
 * device ids repeat from batch to batch, and a string valid once is valid for good.
 */
export function parseTelemetryBatch(
  body: unknown,
): { success: true; data: TelemetryBatch } | { success: false; error: z.core.$ZodError } {
  if (fastBatchCheck(body)) return { success: true, data: body as TelemetryBatch };
  const parsed = TelemetryBatchSchema.safeParse(body);
  return parsed.success ? { success: true, data: parsed.data } : { success: false, error: parsed.error };
}

type Json = Record<string, unknown>;

const MAX_COUNT = 1_000_000_000;
const MAX_SUM = MAX_COUNT * MAX_OUTCOME_VALUE;
/** Enough distinct strings for any fleet's names, versions and active devices; then start over. */
const MAX_REMEMBERED = 65_536;

/** A string some schema accepted once (it is a pure function of the string). */
function memo(schema: z.ZodMiniType): (s: unknown) => boolean {
  const valid = new Set<string>();
  return (s) => {
    if (typeof s !== 'string') return false;
    if (valid.has(s)) return true;
    if (!schema.safeParse(s).success) return false;
    if (valid.size >= MAX_REMEMBERED) valid.clear();
    valid.add(s);
    return true;
  };
}

const isName = memo(Name);
const isSemVer = memo(SemVer);
const isTime = memo(IsoTime);
const isBatchId = (s: unknown) => TelemetryBatchSchema.shape.batchId.safeParse(s).success;
const knownDevices = new Set<string>();
const isDeviceId = (s: unknown): boolean => {
  if (typeof s !== 'string') return false;
  if (knownDevices.has(s)) return true;
  if (!DEVICE_ID_PATTERN.test(s)) return false;
  if (knownDevices.size >= MAX_REMEMBERED) knownDevices.clear();
  knownDevices.add(s);
  return true;
};

/** Histogram keys: one to three digits (leading zeros allowed) naming a bucket below HISTOGRAM_BUCKETS. */
const BUCKET_KEYS = new Set<string>();
for (let n = 0; n < HISTOGRAM_BUCKETS; n++) {
  for (let width = String(n).length; width <= 3; width++) BUCKET_KEYS.add(String(n).padStart(width, '0'));
}

const setOf = (values: readonly string[]) => new Set<unknown>(values);
const BACKEND_SET = setOf(BACKENDS);
const ERROR_SET = setOf(ERROR_CODES);
const FALLBACK_SET = setOf(BACKEND_FALLBACK_CODES);
const BROWSER_SET = setOf(BROWSER_FAMILIES);
const OS_SET = setOf(OS_FAMILIES);
const CLASS_SET = setOf(DEVICE_CLASSES);

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown, min: number, max: number) =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
const isCount = (v: unknown) => isInt(v, 0, MAX_COUNT);
const isNumber = (v: unknown, min: number, max: number) =>
  typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max;

/** Every key is one of `allowed` (strict objects); `required` are present. */
function keysWithin(o: Json, allowed: ReadonlySet<string>, required: readonly string[]): boolean {
  for (const k in o) if (!allowed.has(k) || !Object.hasOwn(o, k)) return false;
  for (const k of required) if (!Object.hasOwn(o, k)) return false;
  return true;
}

/** An optional field: absent, or valid. */
const opt = (o: Json, k: string, check: (v: unknown) => boolean) => !Object.hasOwn(o, k) || check(o[k]);

const BATCH_KEYS = new Set([
  'schema',
  'batchId',
  'deviceId',
  'app',
  'channel',
  'runtimeVersion',
  'windowStart',
  'windowEnd',
  'dropped',
  'records',
]);
const BATCH_REQUIRED = [...BATCH_KEYS];

/** The fast path alone: true only for a valid batch (exported for batch-check.test.ts). */
export function fastBatchCheck(b: unknown): boolean {
  if (!isObject(b) || !keysWithin(b, BATCH_KEYS, BATCH_REQUIRED)) return false;
  if (b.schema !== 1 || !isCount(b.dropped)) return false;
  if (!isDeviceId(b.deviceId) || !isName(b.app) || !isName(b.channel) || !isSemVer(b.runtimeVersion))
    return false;
  if (!isTime(b.windowStart) || !isTime(b.windowEnd) || !isBatchId(b.batchId)) return false;
  const records = b.records;
  if (!Array.isArray(records) || records.length < 1 || records.length > MAX_RECORDS_PER_BATCH) return false;
  for (const r of records) if (!isRecord(r)) return false;
  return true;
}

const RECORD_REQUIRED = [
  'model',
  'version',
  'backend',
  'role',
  'inferences',
  'errors',
  'latencyMs',
  'downloadBytes',
  'downloadMs',
  'features',
];
const RECORD_KEYS = new Set([...RECORD_REQUIRED, 'loadMs', 'shadow', 'segment', 'update', 'quality']);

function isRecord(r: unknown): boolean {
  if (!isObject(r) || !keysWithin(r, RECORD_KEYS, RECORD_REQUIRED)) return false;
  if (!isName(r.model) || !isSemVer(r.version) || !BACKEND_SET.has(r.backend)) return false;
  if (r.role !== 'active' && r.role !== 'shadow') return false;
  if (!isCount(r.inferences) || !isCount(r.downloadBytes)) return false;
  if (!isNumber(r.downloadMs, 0, 86_400_000) || !opt(r, 'loadMs', (v) => isNumber(v, 0, 3_600_000)))
    return false;
  if (!isCountRecord(r.errors, ERROR_SET) || !isHistogram(r.latencyMs)) return false;
  const features = r.features;
  if (!Array.isArray(features) || features.length > 16) return false;
  for (const f of features) if (!isFeature(f)) return false;
  if (!opt(r, 'shadow', isShadow) || !opt(r, 'segment', isSegment)) return false;
  if (!opt(r, 'update', isUpdate) || !opt(r, 'quality', isQuality)) return false;
  // The record schema's refinement: a shadow record, and only one, carries a shadow report.
  return (r.role === 'shadow') === Object.hasOwn(r, 'shadow');
}

/** A partial record over an enum of keys, each a count. */
function isCountRecord(v: unknown, keys: ReadonlySet<unknown>): boolean {
  if (!isObject(v)) return false;
  for (const k in v) if (!Object.hasOwn(v, k) || !keys.has(k) || !isCount(v[k])) return false;
  return true;
}

function isHistogram(v: unknown): boolean {
  if (!isObject(v)) return false;
  let n = 0;
  for (const k in v) {
    if (!Object.hasOwn(v, k) || !BUCKET_KEYS.has(k) || !isCount(v[k])) return false;
    n += 1;
  }
  return n <= HISTOGRAM_BUCKETS;
}

const FEATURE_KEYS = new Set(['name', 'counts']);
const FEATURE_REQUIRED = ['name', 'counts'];

function isFeature(f: unknown): boolean {
  if (!isObject(f) || !keysWithin(f, FEATURE_KEYS, FEATURE_REQUIRED) || !isName(f.name)) return false;
  const counts = f.counts;
  if (!Array.isArray(counts) || counts.length < 2 || counts.length > 64) return false;
  for (const c of counts) if (!isCount(c)) return false;
  return true;
}

const SHADOW_KEYS = new Set(['against', 'compared', 'agreements', 'absDiff']);
const SHADOW_REQUIRED = [...SHADOW_KEYS];

function isShadow(s: unknown): boolean {
  return (
    isObject(s) &&
    keysWithin(s, SHADOW_KEYS, SHADOW_REQUIRED) &&
    isSemVer(s.against) &&
    isCount(s.compared) &&
    isCount(s.agreements) &&
    isHistogram(s.absDiff)
  );
}

const SEGMENT_KEYS = new Set(['browser', 'browserMajor', 'os', 'deviceClass']);

function isSegment(s: unknown): boolean {
  return (
    isObject(s) &&
    keysWithin(s, SEGMENT_KEYS, []) &&
    opt(s, 'browser', (v) => BROWSER_SET.has(v)) &&
    opt(s, 'browserMajor', (v) => isInt(v, 0, 999)) &&
    opt(s, 'os', (v) => OS_SET.has(v)) &&
    opt(s, 'deviceClass', (v) => CLASS_SET.has(v))
  );
}

const UPDATE_KEYS = new Set([
  'downloads',
  'resumed',
  'failures',
  'fallbacks',
  'guardFallbacks',
  'storagePersisted',
]);

function isUpdate(u: unknown): boolean {
  return (
    isObject(u) &&
    keysWithin(u, UPDATE_KEYS, []) &&
    opt(u, 'downloads', isCount) &&
    opt(u, 'resumed', isCount) &&
    opt(u, 'failures', (v) => isCountRecord(v, ERROR_SET)) &&
    opt(u, 'fallbacks', (v) => isCountRecord(v, FALLBACK_SET)) &&
    opt(u, 'guardFallbacks', isCount) &&
    opt(u, 'storagePersisted', (v) => typeof v === 'boolean')
  );
}

const QUALITY_KEYS = new Set(['confusion', 'outcomes']);
const OUTCOME_KEYS = new Set(['name', 'count', 'sum', 'sumSq']);
const OUTCOME_REQUIRED = [...OUTCOME_KEYS];

function isQuality(q: unknown): boolean {
  if (!isObject(q) || !keysWithin(q, QUALITY_KEYS, [])) return false;
  if (Object.hasOwn(q, 'confusion')) {
    const cells = q.confusion;
    if (!Array.isArray(cells) || cells.length > 1024) return false;
    for (const c of cells) {
      if (!Array.isArray(c) || c.length !== 3) return false;
      if (!isInt(c[0], 0, 31) || !isInt(c[1], 0, 31) || !isCount(c[2])) return false;
    }
  }
  if (Object.hasOwn(q, 'outcomes')) {
    const outcomes = q.outcomes;
    if (!Array.isArray(outcomes) || outcomes.length > MAX_OUTCOMES_PER_RECORD) return false;
    for (const o of outcomes) {
      if (!isObject(o) || !keysWithin(o, OUTCOME_KEYS, OUTCOME_REQUIRED)) return false;
      if (!isName(o.name) || !isCount(o.count)) return false;
      if (!isNumber(o.sum, -MAX_SUM, MAX_SUM) || !isNumber(o.sumSq, 0, MAX_SUM)) return false;
    }
  }
  return true;
}
