/**
 * The statistics of an experiment: two or more releases split by bucket, one primary metric (an
 * outcome's mean or rate, or accuracy from feedback), judged with the install as the unit.
 *
 * Each arm's metric is a ratio of sums over its installs (Σ values / Σ observations; an install
 * with many outcomes weighs by its count) with the cluster-robust (sandwich) variance, so one
 * device's correlated outcomes count as one unit's deviation. Treatment − control is tested with
 * the mixture sequential probability ratio test (mSPRT) of Johari, Koomen, Pekelis and Walsh,
 * "Always valid inference: continuous monitoring of A/B tests" (Operations Research, 2022), with
 * a normal mixture N(0, τ²) over the effect: with V the variance of the estimated effect Δ̂,
 *
 *   Λ = sqrt(V / (V + τ²)) · exp(τ² Δ̂² / (2 V (V + τ²)))
 *
 * and the always-valid p-value is the running minimum of 1/Λ over the looks, so an operator (or
 * the monitor every 30 s) may look as often as they like without inflating false winners. The
 * confidence sequence is the set of effects the test would not reject: Δ̂ ± sqrt(V (V + τ²) / τ²
 * · (log((V + τ²) / V) − 2 log α)). τ is the minimum detectable effect the operator declares
 * (the mixture is tightest near it). With k treatment arms each is tested at α / k (Bonferroni).
 */

export interface UnitSums {
  /** Observations of the metric from one install (outcome values, or labelled predictions). */
  n: number;
  /** Their sum (outcome values, or correct predictions). */
  sum: number;
}

export interface ArmData {
  release: string;
  /** One entry per install in the arm. */
  units: readonly UnitSums[];
}

export interface ExperimentDesign {
  /** Level of the test (false winners, at most this share of experiments with no true effect). */
  alpha: number;
  /** The smallest effect worth detecting, in the metric's units (e.g. 0.02 for two points of rate). */
  minimumEffect: number;
  /** 'increase': a higher value is better (accepted, accuracy); 'decrease': lower is better. */
  direction: 'increase' | 'decrease';
  /** No verdict before each arm has this many installs (the plug-in variance needs them). */
  minInstallsPerArm: number;
}

export const DEFAULT_DESIGN: ExperimentDesign = {
  alpha: 0.05,
  minimumEffect: 0.02,
  direction: 'increase',
  minInstallsPerArm: 30,
};

export interface ArmEstimate {
  value: number;
  /** Standard error with installs as the units. */
  se: number;
  installs: number;
  observations: number;
}

/** An arm's metric as a ratio of sums over its installs with the sandwich variance; null with fewer than 2 installs. */
export function armEstimate(units: readonly UnitSums[]): ArmEstimate | null {
  let n = 0;
  let sum = 0;
  for (const u of units) {
    n += u.n;
    sum += u.sum;
  }
  const m = units.filter((u) => u.n > 0).length;
  if (m < 2 || n === 0) return null;
  const value = sum / n;
  let squares = 0;
  for (const u of units) squares += (u.sum - value * u.n) ** 2;
  const variance = ((m / (m - 1)) * squares) / n ** 2;
  return { value, se: Math.sqrt(variance), installs: m, observations: n };
}

/** The mixture likelihood ratio Λ for an estimated effect with variance v, mixture variance tau2. */
export function mixtureLikelihoodRatio(effect: number, v: number, tau2: number): number {
  if (v <= 0) return effect === 0 ? 1 : Number.POSITIVE_INFINITY;
  return Math.sqrt(v / (v + tau2)) * Math.exp((tau2 * effect * effect) / (2 * v * (v + tau2)));
}

/** Half-width of the always-valid confidence sequence at level alpha for an effect with variance v. */
export function sequenceHalfWidth(v: number, tau2: number, alpha: number): number {
  if (v <= 0) return 0;
  return Math.sqrt(((v * (v + tau2)) / tau2) * (Math.log((v + tau2) / v) - 2 * Math.log(alpha)));
}

export interface ArmComparison {
  release: string;
  control: string;
  /** Treatment − control, in the metric's units. */
  effect: number;
  /** The always-valid confidence sequence at this look. */
  interval: [number, number];
  /** Always-valid p-value (running minimum of 1/Λ; pass the previous one to carry it). */
  p: number;
  treatment: ArmEstimate;
  controlEstimate: ArmEstimate;
}

export type ExperimentVerdict =
  | { decision: 'waiting'; reason: string; comparisons: ArmComparison[] }
  | { decision: 'running'; comparisons: ArmComparison[] }
  | { decision: 'winner'; winner: string; comparisons: ArmComparison[] }
  | { decision: 'no-detectable-difference'; comparisons: ArmComparison[] }
  | { decision: 'stopped-for-harm'; harmful: string[]; comparisons: ArmComparison[] }
  /**
   * Thompson-sampling allocation (thompson.ts): the shares followed the data, so the fixed-split
   * mSPRT does not name a winner; instead each treatment's posterior probability of being the best
   * (the comparisons stay, as descriptions, not as tests).
   */
  | {
      decision: 'adaptive';
      probabilities: Array<{ release: string; pBest: number }>;
      comparisons: ArmComparison[];
    };

/**
 * One look at an experiment: arms[0] is the control. `previousP` (by release) carries each arm's
 * always-valid p-value from earlier looks (it never rises). Verdicts:
 * - winner: a treatment whose confidence sequence lies entirely on the better side of 0 (the best
 *   such arm when several do);
 * - stopped-for-harm: a treatment whose sequence lies entirely on the worse side;
 * - no-detectable-difference: every treatment's sequence lies inside (−minimumEffect, +minimumEffect);
 * - running otherwise, waiting until each arm has `minInstallsPerArm` installs.
 */
export function analyseExperiment(
  arms: readonly ArmData[],
  design: ExperimentDesign = DEFAULT_DESIGN,
  previousP: ReadonlyMap<string, number> = new Map(),
): ExperimentVerdict {
  if (arms.length < 2) throw new RangeError('an experiment has a control and at least one treatment');
  const estimates = arms.map((a) => armEstimate(a.units));
  const control = estimates[0];
  const short = arms.find((_, i) => (estimates[i]?.installs ?? 0) < design.minInstallsPerArm);
  const alpha = design.alpha / (arms.length - 1);
  const tau2 = design.minimumEffect ** 2;
  const comparisons: ArmComparison[] = [];
  if (control) {
    for (let i = 1; i < arms.length; i++) {
      const treatment = estimates[i];
      if (!treatment) continue;
      const effect = treatment.value - control.value;
      const v = treatment.se ** 2 + control.se ** 2;
      const half = sequenceHalfWidth(v, tau2, alpha);
      const p = Math.min(
        previousP.get(arms[i]!.release) ?? 1,
        1 / mixtureLikelihoodRatio(effect, v, tau2),
        1,
      );
      comparisons.push({
        release: arms[i]!.release,
        control: arms[0]!.release,
        effect,
        interval: [effect - half, effect + half],
        p,
        treatment,
        controlEstimate: control,
      });
    }
  }
  if (short || comparisons.length < arms.length - 1) {
    return {
      decision: 'waiting',
      reason: `each arm needs ${design.minInstallsPerArm} installs with data (${short?.release ?? arms[0]!.release} has ${estimates[arms.indexOf(short ?? arms[0]!)]?.installs ?? 0})`,
      comparisons,
    };
  }
  const sign = design.direction === 'increase' ? 1 : -1;
  // The always-valid p carries what an earlier look already showed; the sequence is this look's.
  const better = comparisons.filter((c) => c.p <= alpha && sign * c.effect > 0);
  const worse = comparisons.filter((c) => c.p <= alpha && sign * c.effect < 0);
  if (worse.length > 0) {
    return { decision: 'stopped-for-harm', harmful: worse.map((c) => c.release), comparisons };
  }
  if (better.length > 0) {
    const best = better.reduce((a, b) => (sign * b.effect > sign * a.effect ? b : a));
    return { decision: 'winner', winner: best.release, comparisons };
  }
  const small = comparisons.every(
    (c) => c.interval[0] > -design.minimumEffect && c.interval[1] < design.minimumEffect,
  );
  return small ? { decision: 'no-detectable-difference', comparisons } : { decision: 'running', comparisons };
}

export interface SampleSizeEstimate {
  /** Installs per arm for `power` at the minimum effect. */
  installsPerArm: number;
  /** Days to reach them at the given rate of new installs with data per day (null without a rate). */
  days: number | null;
}

const Z_POWER: Record<string, number> = { '0.8': 0.8416, '0.9': 1.2816 };

/**
 * Installs per arm before start: the smallest n at which an effect of `minimumEffect` is, with
 * probability `power`, outside the confidence sequence (Δ̂ − z_power · sd(n) ≥ half-width(n)),
 * with `sd` the per-install standard deviation of the metric (for a rate p: sqrt(p(1 − p)) times
 * the outcomes per install's spread; pass what the control release shows). Days: n × arms /
 * (installs per day × share of the fleet in the experiment).
 */
export function sampleSize(
  design: ExperimentDesign,
  opts: { sdPerInstall: number; arms: number; power?: 0.8 | 0.9; installsPerDay?: number; shareBps?: number },
): SampleSizeEstimate {
  const alpha = design.alpha / (opts.arms - 1);
  const tau2 = design.minimumEffect ** 2;
  const z = Z_POWER[String(opts.power ?? 0.8)]!;
  const ok = (n: number) => {
    const v = (2 * opts.sdPerInstall ** 2) / n;
    return design.minimumEffect - z * Math.sqrt(v) >= sequenceHalfWidth(v, tau2, alpha);
  };
  let hi = 2;
  while (!ok(hi) && hi < 1e12) hi *= 2;
  let lo = Math.max(1, hi / 2);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (ok(mid)) hi = mid;
    else lo = mid;
  }
  const installsPerArm = Math.max(hi, design.minInstallsPerArm);
  const share = (opts.shareBps ?? 10_000) / 10_000;
  const days =
    opts.installsPerDay && opts.installsPerDay > 0
      ? (installsPerArm * opts.arms) / (opts.installsPerDay * share)
      : null;
  return { installsPerArm, days };
}
