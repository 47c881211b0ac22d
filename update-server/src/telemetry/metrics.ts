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

/**
 * Per-release metrics for Prometheus (Grafana and Alertmanager work on these without us):
 * inferences and errors as counters and latency as a histogram, counted by this process from
 * the batches it committed (sum over processes in PromQL); drift as gauges read from the
 * database at scrape time, so every process reports the same fleet-wide value.
 */
export class TelemetryMetrics {
  private readonly inferences: Counter<string>;
  private readonly errors: Counter<string>;
  private readonly latency = new Map<string, LatencySeries>();

  constructor(
    registry: Registry,
    driftSource: () => Promise<DriftSample[]>,
    qualitySource: () => Promise<QualitySample[]> = async () => [],
  ) {
    this.inferences = new Counter({
      name: 'edgeship_model_inferences_total',
      help: 'Inferences reported by devices, per release, backend and role',
      labelNames: RELEASE_LABELS,
      registers: [registry],
    });
    this.errors = new Counter({
      name: 'edgeship_model_errors_total',
      help: 'Failed inferences reported by devices, per release, backend, role and error code',
      labelNames: [...RELEASE_LABELS, 'code'],
      registers: [registry],
    });
    const latency = this.latency;
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
        values: [...latency.values()].flatMap((s) => latencyValues(s)),
      }),
      reset: () => latency.clear(),
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
      const labels: ReleaseLabels = releaseKeyOf(batch, record);
      this.inferences.inc(labels, record.inferences);
      for (const [code, n] of Object.entries(record.errors)) if (n) this.errors.inc({ ...labels, code }, n);
      const id = Object.values(labels).join('\u0000');
      let series = this.latency.get(id);
      if (!series) {
        series = {
          labels,
          buckets: new Array(LATENCY_LE_SECONDS.length + 1).fill(0),
          sumSeconds: 0,
          count: 0,
        };
        this.latency.set(id, series);
      }
      for (const [index, n] of Object.entries(record.latencyMs)) {
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
