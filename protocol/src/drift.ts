/**
 * Distances between a field histogram and its reference, over the same bins. Shared so the
 * server's canary analysis and any on-device check compute the same numbers.
 */

// Empty bins would make PSI infinite; the usual fix is a small floor on each share.
const EPSILON = 1e-4;

function shares(counts: readonly number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => (total > 0 ? c / total : 0));
}

function checkSameBins(a: readonly number[], b: readonly number[]): void {
  if (a.length !== b.length) throw new RangeError(`bin counts differ: ${a.length} vs ${b.length}`);
}

/**
 * Population Stability Index: sum over bins of (p - q) * ln(p / q), each share floored at
 * 1e-4. Rule of thumb: < 0.1 stable, 0.1–0.2 moderate shift, > 0.2 drift.
 */
export function populationStabilityIndex(reference: readonly number[], observed: readonly number[]): number {
  checkSameBins(reference, observed);
  const q = shares(reference);
  const p = shares(observed);
  let psi = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = Math.max(p[i]!, EPSILON);
    const qi = Math.max(q[i]!, EPSILON);
    psi += (pi - qi) * Math.log(pi / qi);
  }
  return psi;
}

/** Jensen-Shannon distance (the square root of the divergence, base 2): 0 same, 1 disjoint. */
export function jensenShannonDistance(reference: readonly number[], observed: readonly number[]): number {
  checkSameBins(reference, observed);
  const q = shares(reference);
  const p = shares(observed);
  const kl = (a: number[], m: number[]) =>
    a.reduce((sum, ai, i) => (ai > 0 ? sum + ai * Math.log2(ai / m[i]!) : sum), 0);
  const m = p.map((pi, i) => (pi + q[i]!) / 2);
  const divergence = (kl(p, m) + kl(q, m)) / 2;
  return Math.sqrt(Math.max(0, divergence));
}

/** Kolmogorov-Smirnov statistic on binned data: the largest gap between the two CDFs at a bin edge. */
export function binnedKolmogorovSmirnov(reference: readonly number[], observed: readonly number[]): number {
  checkSameBins(reference, observed);
  const q = shares(reference);
  const p = shares(observed);
  let cdfP = 0;
  let cdfQ = 0;
  let statistic = 0;
  for (let i = 0; i < p.length; i++) {
    cdfP += p[i]!;
    cdfQ += q[i]!;
    statistic = Math.max(statistic, Math.abs(cdfP - cdfQ));
  }
  return statistic;
}

export interface DriftReport {
  psi: number;
  jsDistance: number;
  ks: number;
  drifted: boolean;
}

export const DEFAULT_PSI_THRESHOLD = 0.2;

export function measureDrift(
  reference: readonly number[],
  observed: readonly number[],
  psiThreshold = DEFAULT_PSI_THRESHOLD,
): DriftReport {
  const psi = populationStabilityIndex(reference, observed);
  return {
    psi,
    jsDistance: jensenShannonDistance(reference, observed),
    ks: binnedKolmogorovSmirnov(reference, observed),
    drifted: psi > psiThreshold,
  };
}
