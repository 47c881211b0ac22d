import { classesOf, type MonitoringSpec } from '@edgeship/protocol';
import { emptyValues, mergeValues, type QualityStats, windowOf } from './aggregate.ts';
import type { TelemetryStore } from './store.ts';
import type { ReleaseCatalog } from './validate.ts';

/** Outcome names shown per release (the most reported first): names come from devices, so bounded. */
export const MAX_OUTCOMES_SHOWN = 16;

export interface OutcomeSummary {
  count: number;
  /** The mean value: for a 0/1 outcome (`accepted`), its rate. */
  mean: number | null;
  /** Standard deviation of the values (sample, n − 1). */
  sd: number | null;
}

/** A release's live accuracy and outcomes, as the fleet API, `/metrics` and `edgeship status` show them. */
export interface QualitySummary {
  /** Predictions the app labelled. */
  labelled: number;
  correct: number;
  accuracy: number | null;
  /** The classes, in index order (empty for a release that is no classifier). */
  labels: string[];
  /** confusion[actual][predicted], or null without feedback. */
  confusion: number[][] | null;
  outcomes: Record<string, OutcomeSummary>;
}

export function outcomeSummary(o: { count: number; sum: number; sumSq: number }): OutcomeSummary {
  const mean = o.count > 0 ? o.sum / o.count : null;
  const variance = o.count > 1 ? Math.max(0, (o.sumSq - (o.sum * o.sum) / o.count) / (o.count - 1)) : null;
  return { count: o.count, mean, sd: variance === null ? null : Math.sqrt(variance) };
}

export function qualitySummary(q: QualityStats, spec: MonitoringSpec | null | undefined): QualitySummary {
  const labels = spec ? [...(classesOf(spec)?.labels ?? [])] : [];
  let labelled = 0;
  let correct = 0;
  const confusion = labels.map(() => labels.map(() => 0));
  for (const [cell, n] of Object.entries(q.confusion)) {
    const [actual, predicted] = cell.split(',').map(Number) as [number, number];
    labelled += n;
    if (actual === predicted) correct += n;
    const row = confusion[actual];
    if (row && predicted < row.length) row[predicted]! += n;
  }
  const outcomes = Object.entries(q.outcomes)
    .sort(([a, x], [b, y]) => y.count - x.count || (a < b ? -1 : 1))
    .slice(0, MAX_OUTCOMES_SHOWN);
  return {
    labelled,
    correct,
    accuracy: labelled > 0 ? correct / labelled : null,
    labels,
    confusion: labelled > 0 ? confusion : null,
    outcomes: Object.fromEntries(outcomes.map(([name, o]) => [name, outcomeSummary(o)])),
  };
}

/** One release's quality over the metrics window, for the Prometheus gauges. */
export interface QualitySample {
  app: string;
  channel: string;
  model: string;
  version: string;
  summary: QualitySummary;
}

/**
 * Accuracy and outcomes of every release with data in the last `windowSec`, read from the
 * aggregates at scrape time (so every process reports the same fleet-wide values) and cached for
 * a few seconds, as the drift gauges are.
 */
export class QualitySource {
  private cache: { at: number; samples: Promise<QualitySample[]> } | null = null;

  constructor(
    private readonly store: TelemetryStore,
    private readonly catalog: ReleaseCatalog,
    private readonly opts: { windowSec: number; aggregateWindowSec: number; now: () => Date },
    private readonly onError: (error: unknown) => void,
  ) {}

  samples(): Promise<QualitySample[]> {
    const at = Date.now();
    if (this.cache && at - this.cache.at < 5_000) return this.cache.samples;
    const samples = this.compute().catch((error) => {
      this.onError(error);
      return [];
    });
    this.cache = { at, samples };
    return samples;
  }

  private async compute(): Promise<QualitySample[]> {
    const since = windowOf(
      this.opts.now().getTime() - this.opts.windowSec * 1000,
      this.opts.aggregateWindowSec,
    );
    const out: QualitySample[] = [];
    for (const { app, channel } of await this.store.channelsSince(since)) {
      const perRelease = new Map<
        string,
        { model: string; version: string; values: ReturnType<typeof emptyValues> }
      >();
      for (const [key, values] of await this.store.aggregates({ app, channel, since, role: 'active' })) {
        const id = `${key.model}@${key.version}`;
        const entry = perRelease.get(id) ?? { model: key.model, version: key.version, values: emptyValues() };
        mergeValues(entry.values, values);
        perRelease.set(id, entry);
      }
      for (const { model, version, values } of perRelease.values()) {
        const q = values.quality;
        if (Object.keys(q.confusion).length === 0 && Object.keys(q.outcomes).length === 0) continue;
        const spec = await this.catalog.monitoring(model, version);
        out.push({ app, channel, model, version, summary: qualitySummary(q, spec) });
      }
    }
    return out;
  }
}
