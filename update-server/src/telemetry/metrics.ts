import { bucketUpperBound, type TelemetryBatch } from '@edgeship/protocol';
import { Counter, Gauge, type Registry } from 'prom-client';
import { releaseKeyOf } from './aggregate.ts';
import type { QualitySample } from './quality.ts';

/** Prometheus `le` bounds (seconds) for inference latency; each log bucket goes to the first bound at or above it. */
const LATENCY_LE_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const RELEASE_LABELS = ['app', 'channel', 'model', 'version', 'backend', 'role'] as const;
type ReleaseLabels = Record<(typeof RELEASE_LABELS)[number], string>;

export interface DriftSample {
  app: string;
  channel: string;
  model: string;
  version: string;
  feature: string;
  psi: number;
  jsDistance: number;
  ks: number;
}

interface LatencySeries {
  labels: ReleaseLabels;
  /** Cumulative counts per `le` bound, then +Inf. */
  buckets: number[];
  sumSeconds: number;
  count: number;
}

/** One release key's numbers, in plain numbers: prom-client's inc() hashes its labels per call. */
interface ReleaseSeries extends LatencySeries {
  inferences: number;
  /** Failed inferences by error code. */
  errors: Map<string, number>;
}

/**
 * Per-release metrics for Prometheus (Grafana and Alertmanager work on these without us):
 * inferences and errors as counters and latency as a histogram, counted by this process from
 * the batches it committed (sum over processes in PromQL); drift as gauges read from the
 * database at scrape time, so every process reports the same fleet-wide value.
 */
export class TelemetryMetrics {
  /** Per release key (its labels joined), fed to the counters and the histogram at scrape time. */
  private readonly series = new Map<string, ReleaseSeries>();

  constructor(
    registry: Registry,
    driftSource: () => Promise<DriftSample[]>,
    qualitySource: () => Promise<QualitySample[]> = async () => [],
  ) {
    const series = this.series;
    new Counter({
      name: 'edgeship_model_inferences_total',
      help: 'Inferences reported by devices, per release, backend and role',
      labelNames: RELEASE_LABELS,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of series.values()) this.inc(s.labels, s.inferences);
      },
    });
    new Counter({
      name: 'edgeship_model_errors_total',
      help: 'Failed inferences reported by devices, per release, backend, role and error code',
      labelNames: [...RELEASE_LABELS, 'code'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of series.values()) for (const [code, n] of s.errors) this.inc({ ...s.labels, code }, n);
      },
    });
    registry.registerMetric({
      name: 'edgeship_model_inference_latency_seconds',
      help: 'Inference latency reported by devices (log-bucketed on the device; sum uses bucket upper bounds)',
      type: 'histogram',
      aggregator: 'sum',
      get: async () => ({
        name: 'edgeship_model_inference_latency_seconds',
        help: 'Inference latency reported by devices',
        type: 'histogram',
        aggregator: 'sum',
        values: [...series.values()].flatMap((s) => latencyValues(s)),
      }),
      reset: () => series.clear(),
    } as unknown as Parameters<Registry['registerMetric']>[0]);
    const driftGauge = (name: string, help: string, pick: (d: DriftSample) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['app', 'channel', 'model', 'version', 'feature'],
        registers: [registry],
        async collect() {
          this.reset();
          for (const d of await driftSource()) {
            this.set(
              { app: d.app, channel: d.channel, model: d.model, version: d.version, feature: d.feature },
              pick(d),
            );
          }
        },
      });
    // One query per scrape feeds all three gauges: the source caches for a moment.
    driftGauge(
      'edgeship_model_drift_psi',
      'Population stability index of a feature vs the release reference (last hour)',
      (d) => d.psi,
    );
    driftGauge(
      'edgeship_model_drift_js_distance',
      'Jensen-Shannon distance of a feature vs the release reference (last hour)',
      (d) => d.jsDistance,
    );
    driftGauge(
      'edgeship_model_drift_ks',
      'Binned Kolmogorov-Smirnov statistic of a feature vs the release reference (last hour)',
      (d) => d.ks,
    );
    qualityGauges(registry, qualitySource);
  }

  /** Counts a committed batch. */
  observe(batch: TelemetryBatch): void {
    for (const record of batch.records) {
      const id = `${batch.app}\u0000${batch.channel}\u0000${record.model}\u0000${record.version}\u0000${record.backend}\u0000${record.role}`;
      let series = this.series.get(id);
      if (!series) {
        series = {
          labels: releaseKeyOf(batch, record),
          inferences: 0,
          errors: new Map(),
          buckets: new Array(LATENCY_LE_SECONDS.length + 1).fill(0),
          sumSeconds: 0,
          count: 0,
        };
        this.series.set(id, series);
      }
      series.inferences += record.inferences;
      const errors: Record<string, number | undefined> = record.errors;
      for (const code in errors) {
        const n = errors[code];
        if (n) series.errors.set(code, (series.errors.get(code) ?? 0) + n);
      }
      for (const index in record.latencyMs) {
        const n = record.latencyMs[index]!;
        const seconds = bucketUpperBound(Number(index)) / 1000;
        let le = LATENCY_LE_SECONDS.findIndex((bound) => seconds <= bound);
        if (le === -1) le = LATENCY_LE_SECONDS.length;
        series.buckets[le]! += n;
        series.sumSeconds += seconds * n;
        series.count += n;
      }
    }
  }
}

function latencyValues(s: LatencySeries) {
  const name = 'edgeship_model_inference_latency_seconds';
  let cumulative = 0;
  const values = s.buckets.map((n, i) => {
    cumulative += n;
    const le = i < LATENCY_LE_SECONDS.length ? String(LATENCY_LE_SECONDS[i]) : '+Inf';
    return { metricName: `${name}_bucket`, labels: { ...s.labels, le }, value: cumulative };
  });
  values.push({ metricName: `${name}_sum`, labels: { ...s.labels } as never, value: s.sumSeconds });
  values.push({ metricName: `${name}_count`, labels: { ...s.labels } as never, value: s.count });
  return values;
}

const QUALITY_LABELS = ['app', 'channel', 'model', 'version'] as const;

/**
 * Live accuracy and outcomes per release over the last hour (quality.ts), read at scrape time.
 * Labels are bounded: outcome names are the release's 16 most reported.
 */
function qualityGauges(registry: Registry, source: () => Promise<QualitySample[]>): void {
  const labelsOf = (q: QualitySample) => ({
    app: q.app,
    channel: q.channel,
    model: q.model,
    version: q.version,
  });
  const gauge = (
    name: string,
    help: string,
    perOutcome: boolean,
    values: (q: QualitySample) => Array<[string | null, number | null]>,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: perOutcome ? [...QUALITY_LABELS, 'outcome'] : [...QUALITY_LABELS],
      registers: [registry],
      async collect() {
        this.reset();
        for (const q of await source()) {
          for (const [outcome, v] of values(q)) {
            if (v === null) continue;
            this.set(outcome === null ? labelsOf(q) : { ...labelsOf(q), outcome }, v);
          }
        }
      },
    });
  gauge(
    'edgeship_model_accuracy',
    "Share of the app's labelled predictions the release got right (last hour)",
    false,
    (q) => [[null, q.summary.accuracy]],
  );
  gauge(
    'edgeship_model_feedback_labelled',
    'Predictions the app labelled with feedback (last hour)',
    false,
    (q) => [[null, q.summary.labelled > 0 ? q.summary.labelled : null]],
  );
  gauge(
    'edgeship_model_outcome_mean',
    'Mean value of an outcome the app reported; a rate for 0/1 outcomes (last hour)',
    true,
    (q) => Object.entries(q.summary.outcomes).map(([name, o]) => [name, o.mean]),
  );
  gauge('edgeship_model_outcome_count', 'Outcome values the app reported (last hour)', true, (q) =>
    Object.entries(q.summary.outcomes).map(([name, o]) => [name, o.count]),
  );
}
