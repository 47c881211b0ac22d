/**
 * Statistics with the install as the unit. The rollout randomises installs, not inferences: one
 * slow phone reports many slow inferences, and one flaky device many errors, so tests that pool
 * inferences as if they were independent see "significant" differences between two random halves
 * of a healthy fleet. Everything here takes one value (or one pair of counts) per install.
 *
 * The monitor looks every 30 s for days, so a fixed-sample test run at every look would halt any
 * healthy canary eventually. p-values here are always valid: from a confidence sequence, which
 * holds at every look at once, whatever the number of looks (alwaysValidP).
 */

export interface Estimate {
  value: number;
  /** Standard error, valid with installs as independent units. */
  se: number;
  /** Installs the estimate rests on. */
  units: number;
}

/**
 * An arm's error rate as a ratio of sums (Σ errors / Σ events over installs, each install scaled
 * by its weight), with the cluster-robust (sandwich) variance of a ratio estimator: installs are
 * the independent units, so a flaky device's errors count as one unit's deviation, not as many.
 */
export function clusteredRate(
  units: ReadonlyArray<{ events: number; errors: number; weight: number }>,
): Estimate | null {
  let events = 0;
  let errors = 0;
  for (const u of units) {
    events += u.events * u.weight;
    errors += u.errors * u.weight;
  }
  const m = units.length;
  if (m < 2 || events === 0) return null;
  const rate = errors / events;
  let squares = 0;
  for (const u of units) squares += (u.weight * (u.errors - rate * u.events)) ** 2;
  // A floor of one pseudo-error per arm: an arm with no errors yet is not known to be error-free.
  const floor = (Math.max(rate, 1 / events) * (1 - rate)) / events;
  const variance = Math.max((m / (m - 1)) * (squares / events ** 2), floor);
  return { value: rate, se: Math.sqrt(variance), units: m };
}

/**
 * Yuen's trimmed mean: drops `share` of the values at each end and uses the winsorised variance,
 * so that a minority of extreme (or forged) installs moves neither the mean nor its error much.
 */
export function trimmedMean(values: readonly number[], share: number): Estimate | null {
  const n = values.length;
  if (n < 3) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const g = Math.min(Math.floor(n * share), Math.floor((n - 2) / 2));
  const h = n - 2 * g;
  let sum = 0;
  for (let i = g; i < n - g; i++) sum += sorted[i]!;
  const mean = sum / h;
  const low = sorted[g]!;
  const high = sorted[n - g - 1]!;
  let wMean = 0;
  for (const v of sorted) wMean += Math.min(high, Math.max(low, v));
  wMean /= n;
  let wSquares = 0;
  for (const v of sorted) wSquares += (Math.min(high, Math.max(low, v)) - wMean) ** 2;
  return { value: mean, se: Math.sqrt(wSquares / (h * (h - 1))), units: n };
}

/**
 * How far from an arm's median, in robust standard deviations (interquartile range / 1.349), an
 * install's value may lie and still be judged as a device could report it. On a normal spread 0.27%
 * of honest installs lie beyond, as many at each end.
 */
export const OUTLIER_FENCE = 3;

/**
 * A trimmed mean that first sets aside the installs beyond the fence, then trims `share` at each
 * end of the rest. Trimming alone is biased by forgers at one end: with a share ε of an arm's
 * installs beyond its top, the top trim drops them and only the rest of its share of honest
 * installs, the bottom trim its whole share, and the honest values kept are no longer the
 * middle of their own distribution. That bias is about 1.8 ε honest standard deviations per
 * arm (0.089 σ at ε = 5%, trimming 10%): on a fleet whose device speeds spread log-normally
 * (σ 0.6) and forgers that push the two arms opposite ways, 11% between the arms, more than the
 * 5% latency margin, and significant once each arm has thousands of installs. Installs beyond
 * the fence are left out whole, so the honest values are trimmed symmetrically.
 *
 * Forgers inside the fence are still only trimmed: one that reports values a slow device could
 * (a slow canary, a fast control) keeps that bias. No statistic of one arm's values can remove it
 * (the median's is 0.066 σ at 5%): only comparing each install with its own earlier latency can.
 */
export function fencedTrimmedMean(
  values: readonly number[],
  share: number,
  fence: number = OUTLIER_FENCE,
): Estimate | null {
  if (values.length < 3) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const median = quantileOfSorted(sorted, 0.5);
  const scale = (quantileOfSorted(sorted, 0.75) - quantileOfSorted(sorted, 0.25)) / 1.349;
  if (!(scale > 0)) return trimmedMean(sorted, share);
  const low = median - fence * scale;
  const high = median + fence * scale;
  return trimmedMean(
    sorted.filter((v) => v >= low && v <= high),
    share,
  );
}

/** The p-quantile of sorted values, interpolated linearly between order statistics. */
function quantileOfSorted(sorted: readonly number[], p: number): number {
  const at = (sorted.length - 1) * p;
  const i = Math.floor(at);
  const next = sorted[Math.min(i + 1, sorted.length - 1)]!;
  return sorted[i]! + (next - sorted[i]!) * (at - i);
}

/** One-sided z of "a − b > margin" for two independent estimates. */
export function marginZ(a: Estimate, b: Estimate, margin: number): number {
  const se = Math.sqrt(a.se ** 2 + b.se ** 2);
  const gap = a.value - b.value - margin;
  if (se === 0) return gap > 0 ? Number.POSITIVE_INFINITY : gap < 0 ? Number.NEGATIVE_INFINITY : 0;
  return gap / se;
}

/**
 * The smallest level at which the normal-mixture confidence sequence has excluded "a − b ≤
 * margin", given z on `units` installs (Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas,
 * "Time-uniform central limit theory and asymptotic confidence sequences", 2021, eq. for the
 * Gaussian-mixture AsympCS): the boundary is z > sqrt((tρ² + 1)/(tρ²) · 2 log(sqrt(tρ² + 1)/α)).
 * Valid at every look at once. ρ tunes the boundary to be tightest near `horizon` installs; it is
 * fixed from the nominal `alpha` so that the p-value is one function of z and t.
 */
export function alwaysValidP(z: number, units: number, alpha: number, horizon: number): number {
  if (!(z > 0) || units < 1) return 1;
  if (z === Number.POSITIVE_INFINITY) return 0;
  const logA = -2 * Math.log(alpha);
  const rho2 = (logA + Math.log(logA + 1)) / horizon;
  const v = units * rho2;
  return Math.min(1, Math.sqrt(v + 1) * Math.exp((-(z * z) * v) / (2 * (v + 1))));
}

/**
 * Holm's step-down procedure: which of the hypotheses to reject at family-wise level `alpha`
 * (sorted ascending, the i-th smallest p is compared with alpha / (m − i) until one fails).
 */
export function holm(pValues: readonly number[], alpha: number): boolean[] {
  const order = pValues.map((p, i) => ({ p, i })).sort((a, b) => a.p - b.p);
  const rejected = pValues.map(() => false);
  const m = pValues.length;
  for (let k = 0; k < m; k++) {
    const { p, i } = order[k]!;
    if (p > alpha / (m - k)) break;
    rejected[i] = true;
  }
  return rejected;
}
