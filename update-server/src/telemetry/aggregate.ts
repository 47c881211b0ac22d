import {
  type Histogram,
  mergeHistograms,
  type TelemetryBatch,
  type TelemetryRecord,
} from '@edgeship/protocol';

/** Where one record's numbers are summed: a release on a backend, in a role, in a time window. */
export interface AggregateKey {
  app: string;
  channel: string;
  model: string;
  version: string;
  backend: string;
  role: 'active' | 'shadow';
  /** Epoch seconds. */
  windowStart: number;
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
  };
}

export function keyString(k: AggregateKey): string {
  return [k.app, k.channel, k.model, k.version, k.backend, k.role, k.windowStart].join('\u0000');
}

function addCounts(into: number[], counts: readonly number[]): number[] {
  const out = into.slice();
  for (let i = 0; i < counts.length; i++) out[i] = (out[i] ?? 0) + counts[i]!;
  return out;
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
  a.latency = mergeHistograms(a.latency, b.latency);
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

export function recordValues(record: TelemetryRecord): AggregateValues {
  const values = emptyValues();
  values.batches = 1;
  values.inferences = record.inferences;
  addRecord(values.errorsByCode, record.errors);
  values.errors = Object.values(values.errorsByCode).reduce((a, b) => a + b, 0);
  values.latency = { ...record.latencyMs };
  if (record.loadMs !== undefined) {
    values.loadMsSum = record.loadMs;
    values.loadCount = 1;
  }
  values.downloadBytes = record.downloadBytes;
  values.downloadMsSum = record.downloadMs;
  for (const f of record.features)
    values.features[f.name] = addCounts(values.features[f.name] ?? [], f.counts);
  if (record.update) {
    const u = record.update;
    const p = values.pipeline;
    p.downloads = u.downloads ?? 0;
    p.resumed = u.resumed ?? 0;
    addRecord(p.failures, u.failures ?? {});
    addRecord(p.fallbacks, u.fallbacks ?? {});
    p.guardFallbacks = u.guardFallbacks ?? 0;
    if (u.storagePersisted !== undefined) {
      p.persistedReports = 1;
      p.persisted = u.storagePersisted ? 1 : 0;
    }
  }
  if (record.shadow) {
    values.shadow[record.shadow.against] = {
      compared: record.shadow.compared,
      agreements: record.shadow.agreements,
      absDiff: { ...record.shadow.absDiff },
    };
  }
  return values;
}

/** A batch's records as deltas per aggregate key (records with the same key are summed). */
export function batchDeltas(
  batch: TelemetryBatch,
  windowStart: number,
): Map<string, [AggregateKey, AggregateValues]> {
  const out = new Map<string, [AggregateKey, AggregateValues]>();
  for (const record of batch.records) {
    const key: AggregateKey = {
      app: batch.app,
      channel: batch.channel,
      model: record.model,
      version: record.version,
      backend: record.backend,
      role: record.role,
      windowStart,
    };
    const id = keyString(key);
    const values = recordValues(record);
    const prev = out.get(id);
    if (prev) {
      values.batches = 0; // one batch counts once per key
      mergeValues(prev[1], values);
    } else out.set(id, [key, values]);
  }
  return out;
}

export function batchInferences(batch: TelemetryBatch): number {
  return batch.records.reduce((n, r) => n + r.inferences, 0);
}

/** Floors a time to its window (epoch seconds). */
export function windowOf(ms: number, windowSec: number): number {
  return Math.floor(ms / 1000 / windowSec) * windowSec;
}
