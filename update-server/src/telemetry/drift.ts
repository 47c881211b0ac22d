import {
  DEFAULT_PSI_THRESHOLD,
  type DriftReport,
  type MonitoringSpec,
  measureDrift,
} from '@edgeship/protocol';

export interface FeatureDrift extends DriftReport {
  /** Field observations the numbers rest on. */
  samples: number;
}

/**
 * Drift of each monitored feature's field counts against the reference shares the release
 * carries (computed at publish time from reference data). Features without field data are left out.
 */
export function driftPerFeature(
  counts: Record<string, number[]>,
  spec: MonitoringSpec,
  psiThreshold = DEFAULT_PSI_THRESHOLD,
): Record<string, FeatureDrift> {
  const out: Record<string, FeatureDrift> = {};
  for (const feature of spec.features) {
    const observed = counts[feature.name];
    const samples = observed?.reduce((a, b) => a + b, 0) ?? 0;
    if (!observed || samples === 0 || observed.length !== feature.reference.length) continue;
    out[feature.name] = { ...measureDrift(feature.reference, observed, psiThreshold), samples };
  }
  return out;
}
