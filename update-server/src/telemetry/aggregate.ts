import {
  type Histogram,
  mergeHistograms,
  type TelemetryBatch,
  type TelemetryRecord,
} from '@edgeship/protocol';

/** Where one record's numbers are summed: a release on a backend, in a role, in a time window. */
/** What a record is counted under: the release, and the backend and role it ran in. */
export interface ReleaseKey {
  app: string;
  channel: string;
  model: string;
  version: string;
  backend: string;
  role: 'active' | 'shadow';
}

export interface AggregateKey extends ReleaseKey {
  /** Epoch seconds. */
  windowStart: number;
}

/** The release key of one of a batch's records (the aggregates' and the metrics' labels). */
export function releaseKeyOf(batch: TelemetryBatch, record: TelemetryBatch['records'][number]): ReleaseKey {
  return {
    app: batch.app,
    channel: batch.channel,
    model: record.model,
    version: record.version,
    backend: record.backend,
    role: record.role,
  };
}

export interface ShadowStats {
  compared: number;
  agreements: number;
  /** Output differences ×1000, log-bucketed (see ShadowReportSchema). */
  absDiff: Histogram;
}

/** The update pipeline on devices (UpdateReportSchema), summed. */
export interface PipelineStats {
  downloads: number;
  resumed: number;
  /** Update failures by code. */
  failures: Record<string, number>;
  /** Backend candidates passed over, by reason. */
  fallbacks: Record<string, number>;
  guardFallbacks: number;
  /** Records that said whether storage is persisted, and how many said yes. */
  persistedReports: number;
  persisted: number;
}

export function emptyPipeline(): PipelineStats {
  return {
    downloads: 0,
    resumed: 0,
    failures: {},
    fallbacks: {},
    guardFallbacks: 0,
    persistedReports: 0,
    persisted: 0,
  };
}

/** Feedback and outcomes from apps (QualityReportSchema), summed. */
export interface QualityStats {
  /** "actual,predicted" (class indices) → count. */
  confusion: Record<string, number>;
  /** Per outcome name: count, sum, sum of squares. */
  outcomes: Record<string, { count: number; sum: number; sumSq: number }>;
}

/** Sums that merge by addition: the whole fleet's numbers are the sum of every batch's. */
export interface AggregateValues {
  batches: number;
  inferences: number;
  errors: number;
  errorsByCode: Record<string, number>;
  latency: Histogram;
  loadMsSum: number;
  loadCount: number;
  downloadBytes: number;
  downloadMsSum: number;
  features: Record<string, number[]>;
  /** Per active version the shadow candidate was compared against. */
  shadow: Record<string, ShadowStats>;
  pipeline: PipelineStats;
  quality: QualityStats;
}

export function emptyValues(): AggregateValues {
  return {
    batches: 0,
    inferences: 0,
    errors: 0,
    errorsByCode: {},
    latency: {},
    loadMsSum: 0,
    loadCount: 0,
    downloadBytes: 0,
    downloadMsSum: 0,
    features: {},
    shadow: {},
    pipeline: emptyPipeline(),
    quality: { confusion: {}, outcomes: {} },
  };
}

export function keyString(k: AggregateKey): string {
  // A template, not Array.join: this runs per record and per group on the ingest path.
  return `${k.app}\u0000${k.channel}\u0000${k.model}\u0000${k.version}\u0000${k.backend}\u0000${k.role}\u0000${k.windowStart}`;
}

function addCounts(into: number[], counts: readonly number[]): number[] {
  const out = into.slice();
  for (let i = 0; i < counts.length; i++) out[i] = (out[i] ?? 0) + counts[i]!;
  return out;
}

/** Adds histogram `b` into `a` in place (mergeHistograms makes a new object per call). */
export function addHistogram(a: Histogram, b: Histogram): void {
  for (const k in b) a[k] = (a[k] ?? 0) + b[k]!;
}

function addRecord(into: Record<string, number>, from: Record<string, number | undefined>) {
  for (const [k, n] of Object.entries(from)) if (n) into[k] = (into[k] ?? 0) + n;
}

/** Adds `b` into `a` (mutates and returns `a`). Exact: every field is a sum. */
export function mergeValues(a: AggregateValues, b: AggregateValues): AggregateValues {
  a.batches += b.batches;
  a.inferences += b.inferences;
  a.errors += b.errors;
  addRecord(a.errorsByCode, b.errorsByCode);
  addHistogram(a.latency, b.latency);
  a.loadMsSum += b.loadMsSum;
  a.loadCount += b.loadCount;
  a.downloadBytes += b.downloadBytes;
  a.downloadMsSum += b.downloadMsSum;
  for (const [name, counts] of Object.entries(b.features))
    a.features[name] = addCounts(a.features[name] ?? [], counts);
  const p = a.pipeline;
  const q = b.pipeline;
  p.downloads += q.downloads;
  p.resumed += q.resumed;
  addRecord(p.failures, q.failures);
  addRecord(p.fallbacks, q.fallbacks);
  p.guardFallbacks += q.guardFallbacks;
  p.persistedReports += q.persistedReports;
  p.persisted += q.persisted;
  mergeQuality(a.quality, b.quality);
  for (const [against, s] of Object.entries(b.shadow)) {
    const prev = a.shadow[against] ?? { compared: 0, agreements: 0, absDiff: {} };
    a.shadow[against] = {
      compared: prev.compared + s.compared,
      agreements: prev.agreements + s.agreements,
      absDiff: mergeHistograms(prev.absDiff, s.absDiff),
    };
  }
  return a;
}

/** Adds b's confusion counts and outcome sums into a (mutates a). */
export function mergeQuality(a: QualityStats, b: QualityStats): void {
  addRecord(a.confusion, b.confusion);
  for (const [name, o] of Object.entries(b.outcomes)) {
    const prev = a.outcomes[name] ?? { count: 0, sum: 0, sumSq: 0 };
    a.outcomes[name] = { count: prev.count + o.count, sum: prev.sum + o.sum, sumSq: prev.sumSq + o.sumSq };
  }
}

export function recordValues(record: TelemetryRecord): AggregateValues {
  return addRecordValues(emptyValues(), record, true);
}

/**
 * Adds one record's numbers into `into` (mutated and returned): `mergeValues(into,
 * recordValues(record))` without building the record's values first, which on the ingest path
 * made an object tree per record only to add it and drop it. `countBatch`: whether this record
 * counts its batch in `batches` (a batch counts once per key, see batchDeltas).
 */
export function addRecordValues(
  into: AggregateValues,
  record: TelemetryRecord,
  countBatch: boolean,
): AggregateValues {
  if (countBatch) into.batches += 1;
  into.inferences += record.inferences;
  const errors: Record<string, number | undefined> = record.errors;
  for (const code in errors) {
    const n = errors[code];
    if (!n) continue;
    into.errorsByCode[code] = (into.errorsByCode[code] ?? 0) + n;
    into.errors += n;
  }
  addHistogram(into.latency, record.latencyMs);
  if (record.loadMs !== undefined) {
    into.loadMsSum += record.loadMs;
    into.loadCount += 1;
  }
  into.downloadBytes += record.downloadBytes;
  into.downloadMsSum += record.downloadMs;
  for (const f of record.features) into.features[f.name] = addCounts(into.features[f.name] ?? [], f.counts);
  if (record.update) {
    const u = record.update;
    const p = into.pipeline;
    p.downloads += u.downloads ?? 0;
    p.resumed += u.resumed ?? 0;
    addRecord(p.failures, u.failures ?? {});
    addRecord(p.fallbacks, u.fallbacks ?? {});
    p.guardFallbacks += u.guardFallbacks ?? 0;
    if (u.storagePersisted !== undefined) {
      p.persistedReports += 1;
      if (u.storagePersisted) p.persisted += 1;
    }
  }
  if (record.quality) {
    const q = into.quality;
    for (const [actual, predicted, n] of record.quality.confusion ?? []) {
      const cell = `${actual},${predicted}`;
      q.confusion[cell] = (q.confusion[cell] ?? 0) + n;
    }
    for (const o of record.quality.outcomes ?? []) {
      const prev = q.outcomes[o.name] ?? { count: 0, sum: 0, sumSq: 0 };
      q.outcomes[o.name] = {
        count: prev.count + o.count,
        sum: prev.sum + o.sum,
        sumSq: prev.sumSq + o.sumSq,
      };
    }
  }
  if (record.shadow) {
    const s = record.shadow;
    const prev = into.shadow[s.against] ?? { compared: 0, agreements: 0, absDiff: {} };
    into.shadow[s.against] = {
      compared: prev.compared + s.compared,
      agreements: prev.agreements + s.agreements,
      absDiff: mergeHistograms(prev.absDiff, s.absDiff),
    };
  }
  return into;
}

/** keyString of a record's aggregate key, without the key object. */
export function recordKeyString(batch: TelemetryBatch, record: TelemetryRecord, windowStart: number): string {
  return `${batch.app}\u0000${batch.channel}\u0000${record.model}\u0000${record.version}\u0000${record.backend}\u0000${record.role}\u0000${windowStart}`;
}

/**
 * Adds a batch's records into `deltas` (per aggregate key; a batch counts once per key it
 * touches). `counted` remembers which batch last counted under each key: pass the same map for
 * every batch of a group.
 */
export function addBatchDeltas(
  deltas: Map<string, [AggregateKey, AggregateValues]>,
  batch: TelemetryBatch,
  windowStart: number,
  counted: Map<string, TelemetryBatch> = new Map(),
): void {
  for (const record of batch.records) {
    const id = recordKeyString(batch, record, windowStart);
    let entry = deltas.get(id);
    if (!entry) {
      entry = [{ ...releaseKeyOf(batch, record), windowStart }, emptyValues()];
      deltas.set(id, entry);
    }
    addRecordValues(entry[1], record, counted.get(id) !== batch);
    counted.set(id, batch);
  }
}

/** A batch's records as deltas per aggregate key (records with the same key are summed). */
export function batchDeltas(
  batch: TelemetryBatch,
  windowStart: number,
): Map<string, [AggregateKey, AggregateValues]> {
  const out = new Map<string, [AggregateKey, AggregateValues]>();
  addBatchDeltas(out, batch, windowStart);
  return out;
}

export function batchInferences(batch: TelemetryBatch): number {
  return batch.records.reduce((n, r) => n + r.inferences, 0);
}

/** Floors a time to its window (epoch seconds). */
export function windowOf(ms: number, windowSec: number): number {
  return Math.floor(ms / 1000 / windowSec) * windowSec;
}
