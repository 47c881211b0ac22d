import { histogramCount, histogramQuantile, type MonitoringSpec } from '@edgeship/protocol';
import type { AggregateValues } from '../telemetry/aggregate.ts';
import { driftPerFeature } from '../telemetry/drift.ts';
import { qualitySummary } from '../telemetry/quality.ts';

/** The alert rules a channel can set a threshold on; a rule without one is off. */
export const ALERT_RULES = ['error-rate', 'p95-latency', 'input-errors', 'drift', 'accuracy-drop'] as const;
export type AlertRule = (typeof ALERT_RULES)[number];
/** Persistent drift: not a threshold of its own, the drift rule held for `retrainAfterMinutes`. */
export const RETRAIN_RULE = 'retrain';

export interface AlertThresholds {
  /** Share (0..1) of calls that failed, any code. */
  errorRate?: number;
  /** p95 inference latency in ms (the histogram bucket's upper bound, as everywhere). */
  p95LatencyMs?: number;
  /** Share (0..1) of calls refused as E_INPUT (inputs that do not match the contract). */
  inputErrorShare?: number;
  /** PSI of the most drifted monitored feature against the release's reference. */
  driftPsi?: number;
  /** Absolute drop of live accuracy below the accuracy the release was published with. */
  accuracyDrop?: number;
}

/** One channel's alert configuration (stored per app/channel, alerts/store.ts). */
export interface AlertConfig {
  thresholds: AlertThresholds;
  /** The trailing window of telemetry judged, in minutes. */
  windowMinutes: number;
  /** Observations (calls; feature values for drift; labels for accuracy) before a rule is judged. */
  minSamples: number;
  /** Drift firing this long (one episode) suggests retraining (`retrain.suggested`, once). */
  retrainAfterMinutes: number;
}

export const DEFAULT_ALERT_CONFIG: Omit<AlertConfig, 'thresholds'> = {
  windowMinutes: 15,
  minSamples: 500,
  retrainAfterMinutes: 360,
};

const THRESHOLD_OF: Record<AlertRule, keyof AlertThresholds> = {
  'error-rate': 'errorRate',
  'p95-latency': 'p95LatencyMs',
  'input-errors': 'inputErrorShare',
  drift: 'driftPsi',
  'accuracy-drop': 'accuracyDrop',
};

/** Labelled predictions in an aggregate (the app's feedback, telemetry `quality`), for the accuracy rule. */
export type LabelledCounts = (values: AggregateValues) => { correct: number; labelled: number } | null;

export const labelledCounts: LabelledCounts = (values) => {
  const { correct, labelled } = qualitySummary(values.quality, null);
  return labelled > 0 ? { correct, labelled } : null;
};

/** What the production release did over the window: the evidence every alert event carries. */
export interface ProductionMeasures {
  inferences: number;
  errors: number;
  errorRate: number | null;
  inputErrorShare: number | null;
  p95LatencyMs: number | null;
  latencySamples: number;
  /** The most drifted monitored feature, if any has data. */
  drift: { feature: string; psi: number; samples: number } | null;
  accuracy: { live: number; labelled: number; published: number | null } | null;
}

export function measure(
  sum: AggregateValues,
  spec: MonitoringSpec | null,
  publishedAccuracy: number | null,
  labelled: LabelledCounts = labelledCounts,
): ProductionMeasures {
  const attempts = sum.inferences + sum.errors;
  let drift: ProductionMeasures['drift'] = null;
  if (spec) {
    for (const [feature, d] of Object.entries(driftPerFeature(sum.features, spec))) {
      if (!drift || d.psi > drift.psi) drift = { feature, psi: d.psi, samples: d.samples };
    }
  }
  const counts = labelled(sum);
  return {
    inferences: sum.inferences,
    errors: sum.errors,
    errorRate: attempts > 0 ? sum.errors / attempts : null,
    inputErrorShare: attempts > 0 ? (sum.errorsByCode.E_INPUT ?? 0) / attempts : null,
    p95LatencyMs: histogramQuantile(sum.latency, 0.95),
    latencySamples: histogramCount(sum.latency),
    drift,
    accuracy: counts
      ? { live: counts.correct / counts.labelled, labelled: counts.labelled, published: publishedAccuracy }
      : null,
  };
}

export interface RuleJudgement {
  rule: AlertRule;
  /** breach: over the threshold; ok: at or under it; unknown: too few observations (no change). */
  status: 'breach' | 'ok' | 'unknown';
  threshold: number;
  value: number | null;
  samples: number;
}

/** Each rule that has a threshold, judged on the window's measures. */
export function judge(config: AlertConfig, m: ProductionMeasures): RuleJudgement[] {
  const attempts = m.inferences + m.errors;
  const observed: Record<AlertRule, { value: number | null; samples: number }> = {
    'error-rate': { value: m.errorRate, samples: attempts },
    'p95-latency': { value: m.p95LatencyMs, samples: m.latencySamples },
    'input-errors': { value: m.inputErrorShare, samples: attempts },
    drift: { value: m.drift?.psi ?? null, samples: m.drift?.samples ?? 0 },
    'accuracy-drop': {
      value:
        m.accuracy && m.accuracy.published !== null
          ? Math.max(0, m.accuracy.published - m.accuracy.live)
          : null,
      samples: m.accuracy?.labelled ?? 0,
    },
  };
  const out: RuleJudgement[] = [];
  for (const rule of ALERT_RULES) {
    const threshold = config.thresholds[THRESHOLD_OF[rule]];
    if (threshold === undefined) continue;
    const { value, samples } = observed[rule];
    const status =
      value === null || samples < config.minSamples ? 'unknown' : value > threshold ? 'breach' : 'ok';
    out.push({ rule, status, threshold, value, samples });
  }
  return out;
}
