import {
  type Backend,
  countFeature,
  type ErrorCode,
  type Histogram,
  MAX_OUTCOMES_PER_RECORD,
  type NumericArray,
  type Release,
  recordValue,
  reduceFeature,
  type TelemetryRecord,
  type UpdateReport,
} from '@edgeship/protocol';
import type { FallbackCode } from '../engines/engine.ts';

export type Tensors = Record<string, NumericArray>;

interface Key {
  model: string;
  version: string;
  backend: Backend;
  role: 'active' | 'shadow';
}

interface Accumulator extends Key {
  inferences: number;
  errors: Partial<Record<ErrorCode, number>>;
  latencyMs: Histogram;
  loadMs?: number;
  downloadBytes: number;
  downloadMs: number;
  features: Map<string, number[]>;
  shadow?: { against: string; compared: number; agreements: number; absDiff: Histogram };
  update?: UpdateReport;
  /** "actual,predicted" → count (feedback on a classifier). */
  confusion?: Map<string, number>;
  outcomes?: Map<string, { count: number; sum: number; sumSq: number }>;
}

/**
 * Aggregates what the device observes into per-release counts, in the worker. Only counts,
 * histograms and per-bin tallies are kept: no input ever leaves the device.
 */
export class TelemetryCollector {
  private readonly accumulators = new Map<string, Accumulator>();

  recordInference(key: Key, release: Release, latencyMs: number, inputs: Tensors, outputs: Tensors): void {
    const acc = this.accumulator(key);
    acc.inferences += 1;
    recordValue(acc.latencyMs, latencyMs);
    for (const feature of release.monitoring.features) {
      const tensors = feature.source.from === 'input' ? inputs : outputs;
      const values = tensors[feature.source.tensor];
      if (!values) continue;
      let counts = acc.features.get(feature.name);
      if (!counts) {
        counts = new Array<number>(feature.binEdges.length + 1).fill(0);
        acc.features.set(feature.name, counts);
      }
      countFeature(counts, feature, reduceFeature(feature.source.reduce, values));
    }
  }

  recordError(key: Key, code: ErrorCode): void {
    const acc = this.accumulator(key);
    acc.errors[code] = (acc.errors[code] ?? 0) + 1;
  }

  recordLoad(key: Key, loadMs: number): void {
    this.accumulator(key).loadMs = loadMs;
  }

  /** A finished download of the release: bytes fetched, time, and whether stored chunks were reused. */
  recordDownload(key: Key, bytes: number, ms: number, resumed = false): void {
    const acc = this.accumulator(key);
    acc.downloadBytes += bytes;
    acc.downloadMs += ms;
    const update = this.update(acc);
    update.downloads = (update.downloads ?? 0) + 1;
    if (resumed) update.resumed = (update.resumed ?? 0) + 1;
  }

  /** A release that could not be downloaded or staged (E_QUOTA, E_HASH, E_UNSUPPORTED_RUNTIME, …). */
  recordUpdateFailure(key: Key, code: ErrorCode): void {
    const update = this.update(this.accumulator(key));
    update.failures = { ...update.failures, [code]: (update.failures?.[code] ?? 0) + 1 };
  }

  /** The backend candidates passed over when the release opened, by reason. */
  recordFallbacks(key: Key, codes: readonly FallbackCode[]): void {
    if (codes.length === 0) return;
    const update = this.update(this.accumulator(key));
    const fallbacks = { ...update.fallbacks };
    for (const code of codes) fallbacks[code] = (fallbacks[code] ?? 0) + 1;
    update.fallbacks = fallbacks;
  }

  /** The guard after activation left this release for the last known good. */
  recordGuardFallback(key: Key): void {
    const update = this.update(this.accumulator(key));
    update.guardFallbacks = (update.guardFallbacks ?? 0) + 1;
  }

  /** One comparison of a shadow candidate against the active release on the same input. */
  recordShadowComparison(key: Key, against: string, maxAbsDiff: number, agreed: boolean): void {
    const acc = this.accumulator({ ...key, role: 'shadow' });
    acc.shadow ??= { against, compared: 0, agreements: 0, absDiff: {} };
    acc.shadow.compared += 1;
    if (agreed) acc.shadow.agreements += 1;
    // Differences are bucketed like latencies; scaled by 1000 so 1e-5 lands above the floor.
    recordValue(acc.shadow.absDiff, maxAbsDiff * 1000);
  }

  /** The app's label for one earlier prediction of this release: a confusion count. */
  recordFeedback(key: Key, actual: number, predicted: number): void {
    const acc = this.accumulator(key);
    acc.confusion ??= new Map();
    const cell = `${actual},${predicted}`;
    acc.confusion.set(cell, (acc.confusion.get(cell) ?? 0) + 1);
  }

  /**
   * One value of a named outcome (`accepted`, `converted`, …) for this release. False when the
   * record already holds MAX_OUTCOMES_PER_RECORD other names (the value is not counted).
   */
  recordOutcome(key: Key, name: string, value: number): boolean {
    const acc = this.accumulator(key);
    acc.outcomes ??= new Map();
    let sums = acc.outcomes.get(name);
    if (!sums) {
      if (acc.outcomes.size >= MAX_OUTCOMES_PER_RECORD) return false;
      sums = { count: 0, sum: 0, sumSq: 0 };
      acc.outcomes.set(name, sums);
    }
    sums.count += 1;
    sums.sum += value;
    sums.sumSq += value * value;
    return true;
  }

  private update(acc: Accumulator): UpdateReport {
    acc.update ??= {};
    return acc.update;
  }

  get isEmpty(): boolean {
    return this.accumulators.size === 0;
  }

  /** Hands over everything recorded since the last drain, and starts afresh. */
  drain(storagePersisted?: boolean): TelemetryRecord[] {
    const records = [...this.accumulators.values()].map((acc): TelemetryRecord => {
      const { features, shadow, loadMs, update, confusion, outcomes, ...rest } = acc;
      const quality = qualityOf(confusion, outcomes);
      const pipeline = update || storagePersisted !== undefined ? { ...update, storagePersisted } : undefined;
      return {
        ...rest,
        ...(pipeline ? { update: pipeline } : {}),
        features: [...features].map(([name, counts]) => ({ name, counts })),
        ...(loadMs === undefined ? {} : { loadMs }),
        ...(shadow ? { shadow } : {}),
        ...(quality ? { quality } : {}),
      };
    });
    this.accumulators.clear();
    return records;
  }

  private accumulator(key: Key): Accumulator {
    const id = `${key.model}@${key.version}/${key.backend}/${key.role}`;
    let acc = this.accumulators.get(id);
    if (!acc) {
      acc = {
        ...key,
        inferences: 0,
        errors: {},
        latencyMs: {},
        downloadBytes: 0,
        downloadMs: 0,
        features: new Map(),
      };
      this.accumulators.set(id, acc);
    }
    return acc;
  }
}

function qualityOf(
  confusion: Accumulator['confusion'],
  outcomes: Accumulator['outcomes'],
): TelemetryRecord['quality'] {
  if (!confusion && !outcomes) return undefined;
  return {
    ...(confusion
      ? {
          confusion: [...confusion].map(([cell, n]): [number, number, number] => {
            const [actual, predicted] = cell.split(',').map(Number) as [number, number];
            return [actual, predicted, n];
          }),
        }
      : {}),
    ...(outcomes ? { outcomes: [...outcomes].map(([name, sums]) => ({ name, ...sums })) } : {}),
  };
}
