import { type Histogram, histogramCount, histogramQuantile, measureDrift } from '@edgeship/protocol';

/** What the fleet reported for one release over a rollout's window (summed over devices). */
export interface ArmStats {
  version: string;
  inferences: number;
  errors: number;
  latencyMs: Histogram;
  /** Per monitored feature: field counts per bin and the release's reference shares. */
  features: Record<string, { counts: number[]; reference: number[] }>;
}

export interface CanaryPolicy {
  /** Neither arm is judged before it has this many inferences. */
  minInferences: number;
  /** Halt when the canary's error rate exceeds the control's by more than this much (absolute)... */
  errorRateMargin: number;
  /**
   * ...with this confidence, in the pooled view (analyzeCanary; the server uses `alpha` on
   * installs): a one-sided z-test of "canary − control > margin" (3.09 is p = 0.001).
   * Testing the margin itself, not just "different", keeps the repeated looks of a running
   * analysis on small early samples from halting a healthy canary.
   */
  errorRateZ: number;
  /**
   * Pooled view only (analyzeCanary on summed arms, kept for callers that have no installs): halt
   * when the pooled p95 exceeds the control's by this factor. The server judges installs instead
   * (robust.ts, `latencyMarginRatio`): pooled inferences are not independent.
   */
  p95LatencyRatio: number;
  /** Halt when a feature drifts on the canary (PSI above this) but not on the control. */
  psiThreshold: number;
  /**
   * No verdict before each arm has evidence from this many installs and this many network
   * prefixes (/24, /48): one network, however many keys it makes, can never halt a rollout.
   */
  minInstalls: number;
  minPrefixes: number;
  /**
   * Robustness to forged installs (canary/robust.ts): each install weighs at most `weightClip`
   * times the arm's median install, and each criterion is judged after dropping this share of
   * installs at both ends of each arm. Twice the share of forged installs to be tolerated.
   */
  trimShare: number;
  weightClip: number;
  /**
   * Install-level analysis (robust.ts): the family-wise rate of halting a healthy canary, over all
   * its looks, criteria and segments together (always-valid p-values, Holm across the tests).
   */
  alpha: number;
  /** Halt when the typical install's p95 latency on the canary exceeds the control's by this factor, with confidence. */
  latencyMarginRatio: number;
  /** Installs per arm where the always-valid boundary is tightest (it stays valid everywhere). */
  lookHorizonInstalls: number;
  /** A segment is judged on its own from this many installs in each arm; smaller ones merge into 'other'. */
  minSegmentInstalls: number;
  /** An install's latency counts once it has this many timed inferences. */
  minLatencySamples: number;
}

/** What a verdict judges: error rate, p95 latency, feature drift. */
export type Criterion = 'errors' | 'latency' | 'drift';
export const ALL_CRITERIA: ReadonlySet<Criterion> = new Set(['errors', 'latency', 'drift']);

export const DEFAULT_CANARY_POLICY: CanaryPolicy = {
  minInferences: 500,
  errorRateMargin: 0.01,
  errorRateZ: 3.09,
  p95LatencyRatio: 1.25,
  psiThreshold: 0.2,
  minInstalls: 30,
  minPrefixes: 8,
  trimShare: 0.1,
  weightClip: 2,
  alpha: 0.01,
  latencyMarginRatio: 1.05,
  lookHorizonInstalls: 200,
  minSegmentInstalls: 30,
  minLatencySamples: 5,
};

export interface CanaryVerdict {
  decision: 'halt' | 'healthy' | 'insufficient-data';
  reasons: string[];
  /**
   * A multi-arm rollout's: the arm this verdict (the worst of theirs, its evidence and reasons) is
   * on, and each arm's decision. Absent for a rollout of one release.
   */
  release?: string;
  arms?: Array<{ release: string; decision: CanaryVerdict['decision']; reasons: string[] }>;
  evidence: {
    canary: ArmSummary;
    control: ArmSummary;
    /** Pooled two-proportion z of the difference (informational). */
    errorRateZ: number | null;
    /** z of "canary − control > margin" (unpooled); the halt criterion. */
    errorRateMarginZ: number | null;
    drift: Record<string, { canaryPsi: number; controlPsi: number | null; jsDistance: number; ks: number }>;
    /** The install-level tests (robust.ts), overall and per segment, with their always-valid p-values. */
    tests?: InstallTest[];
    /** Installs per arm in each segment value, after merging small ones into 'other'. */
    segments?: Record<string, Record<string, { canary: number; control: number }>>;
    /**
     * The same before merging: installs per arm of every segment value seen (a value merged into
     * 'other' has no verdict of its own; the rollout schedule holds for the sizable ones).
     */
    segmentInstalls?: Record<string, Record<string, { canary: number; control: number }>>;
    /** Distinct installs and network prefixes whose evidence each arm counted (canary/robust.ts). */
    sources?: {
      canary: { installs: number; prefixes: number };
      control: { installs: number; prefixes: number };
    };
  };
}

/** One install-level test: a criterion on a part of the fleet. */
export interface InstallTest {
  scope: string;
  criterion: 'errors' | 'latency';
  /** Canary and control estimates: error rate, or mean log p95 latency per install. */
  canary: number;
  control: number;
  installs: { canary: number; control: number };
  /** z of "canary − control > margin" on installs. */
  z: number;
  /** Always-valid p-value (install-stats.ts), before Holm. */
  p: number;
  /** Rejected by Holm at policy.alpha: this test halts the rollout. */
  regressed: boolean;
}

interface ArmSummary {
  version: string;
  inferences: number;
  errorRate: number;
  p95LatencyMs: number | null;
}

function summarize(arm: ArmStats): ArmSummary {
  const attempts = arm.inferences + arm.errors;
  return {
    version: arm.version,
    inferences: arm.inferences,
    errorRate: attempts === 0 ? 0 : arm.errors / attempts,
    p95LatencyMs: histogramCount(arm.latencyMs) === 0 ? null : histogramQuantile(arm.latencyMs, 0.95),
  };
}

/** One-sided two-proportion z statistic (pooled), positive when the canary fails more. */
function twoProportionZ(failA: number, nA: number, failB: number, nB: number): number | null {
  if (nA === 0 || nB === 0) return null;
  const pooled = (failA + failB) / (nA + nB);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / nA + 1 / nB));
  if (se === 0) return failA / nA > failB / nB ? Number.POSITIVE_INFINITY : 0;
  return (failA / nA - failB / nB) / se;
}

/** One-sided z of "rate A − rate B > margin", unpooled; each variance floored at one pseudo-event. */
function marginZ(failA: number, nA: number, failB: number, nB: number, margin: number): number | null {
  if (nA === 0 || nB === 0) return null;
  const pa = failA / nA;
  const pb = failB / nB;
  const variance = (p: number, n: number) => Math.max(p * (1 - p), 1 / n) / n;
  return (pa - pb - margin) / Math.sqrt(variance(pa, nA) + variance(pb, nB));
}

/**
 * Compares two pooled arms (inferences summed over installs). The server's verdict is
 * analyzeEvidence (robust.ts), on installs; this stays for drift (a comparison of distributions)
 * and for callers that only have sums. A regression must be both large (a practical margin)
 * and, for error rates, statistically clear, so that noise on a small fleet never halts a
 * healthy release.
 */
export function analyzeCanary(
  canary: ArmStats,
  control: ArmStats,
  policy: CanaryPolicy = DEFAULT_CANARY_POLICY,
  criteria: ReadonlySet<Criterion> = ALL_CRITERIA,
): CanaryVerdict {
  const c = summarize(canary);
  const k = summarize(control);
  const z = twoProportionZ(
    canary.errors,
    canary.inferences + canary.errors,
    control.errors,
    control.inferences + control.errors,
  );
  const marginTest = marginZ(
    canary.errors,
    canary.inferences + canary.errors,
    control.errors,
    control.inferences + control.errors,
    policy.errorRateMargin,
  );
  const drift: CanaryVerdict['evidence']['drift'] = {};
  const evidence = { canary: c, control: k, errorRateZ: z, errorRateMarginZ: marginTest, drift };
  if (
    canary.inferences + canary.errors < policy.minInferences ||
    control.inferences + control.errors < policy.minInferences
  ) {
    return {
      decision: 'insufficient-data',
      reasons: [`fewer than ${policy.minInferences} inferences on an arm`],
      evidence,
    };
  }

  const reasons: string[] = [];
  if (criteria.has('errors') && marginTest !== null && marginTest > policy.errorRateZ) {
    reasons.push(
      `error rate ${pct(c.errorRate)} vs ${pct(k.errorRate)} on the control, beyond the ${pct(policy.errorRateMargin)} margin (z = ${marginTest.toFixed(2)})`,
    );
  }
  if (
    criteria.has('latency') &&
    c.p95LatencyMs !== null &&
    k.p95LatencyMs !== null &&
    c.p95LatencyMs > k.p95LatencyMs * policy.p95LatencyRatio
  ) {
    reasons.push(
      `p95 latency ${c.p95LatencyMs.toFixed(2)} ms vs ${k.p95LatencyMs.toFixed(2)} ms on the control`,
    );
  }
  for (const [name, feature] of Object.entries(canary.features)) {
    const report = measureDrift(feature.reference, feature.counts, policy.psiThreshold);
    const onControl = control.features[name];
    const controlReport = onControl
      ? measureDrift(onControl.reference, onControl.counts, policy.psiThreshold)
      : null;
    drift[name] = {
      canaryPsi: report.psi,
      controlPsi: controlReport?.psi ?? null,
      jsDistance: report.jsDistance,
      ks: report.ks,
    };
    // Drift the control sees too is the world changing, not the canary misbehaving.
    if (criteria.has('drift') && report.drifted && !controlReport?.drifted) {
      reasons.push(
        `feature ${name} drifted on the canary (PSI ${report.psi.toFixed(3)}) but not on the control`,
      );
    }
  }
  return { decision: reasons.length > 0 ? 'halt' : 'healthy', reasons, evidence };
}

function pct(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}
