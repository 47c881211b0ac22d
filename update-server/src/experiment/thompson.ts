/**
 * Thompson-sampling allocation of an experiment's treatment arms (`allocation: 'thompson'`).
 *
 * Model: each arm's primary metric is its per-install ratio estimate (analysis.ts armEstimate:
 * Σ values / Σ observations over its installs, cluster-robust standard error), and its posterior
 * is taken as Normal(estimate, se²), the large-sample posterior under a flat prior with installs
 * as the units. The probability that an arm is the best treatment is estimated from seeded draws
 * of every arm's posterior; the arms' shares of the experiment's fixed total then follow those
 * probabilities, each keeping a floor share so that no arm stops collecting data. The control's
 * sample (the top of the bucket range, canary/evidence.ts controlFrom) does not move: the total
 * is fixed.
 */
import { mulberry32 } from '@edgeship/protocol';
import type { ArmEstimate } from './analysis.ts';

export const THOMPSON_DRAWS = 20_000;

/** Shares move only by at least this much (re-signing the manifest for noise helps nobody). */
export const MIN_REALLOCATION_BPS = 100;

/**
 * P(arm i is the best treatment) from `draws` joint draws of the arms' normal posteriors;
 * `direction` says which way is better. Seeded, so one look's answer is reproducible.
 */
export function probabilityBest(
  estimates: readonly Pick<ArmEstimate, 'value' | 'se'>[],
  direction: 'increase' | 'decrease',
  seed: number,
  draws = THOMPSON_DRAWS,
): number[] {
  const random = mulberry32(seed);
  const normal = () => {
    // Box-Muller; 1 - u keeps the logarithm finite.
    const u = 1 - random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
  const sign = direction === 'increase' ? 1 : -1;
  const wins = new Array<number>(estimates.length).fill(0);
  for (let d = 0; d < draws; d++) {
    let best = 0;
    let bestValue = Number.NEGATIVE_INFINITY;
    for (const [i, e] of estimates.entries()) {
      const value = sign * (e.value + e.se * normal());
      if (value > bestValue) {
        best = i;
        bestValue = value;
      }
    }
    wins[best]! += 1;
  }
  return wins.map((w) => w / draws);
}

/**
 * Integer shares summing to `totalBps`, each at least `floorBps`, the rest split in proportion to
 * `probabilities` (largest remainders). Refused when the floors do not fit in the total.
 */
export function allocateShares(
  totalBps: number,
  probabilities: readonly number[],
  floorBps: number,
): number[] {
  const k = probabilities.length;
  if (floorBps * k > totalBps) throw new RangeError(`${k} floors of ${floorBps} bp exceed ${totalBps} bp`);
  const free = totalBps - floorBps * k;
  const sum = probabilities.reduce((a, b) => a + b, 0);
  const exact = probabilities.map((p) => (sum > 0 ? (p / sum) * free : free / k));
  const shares = exact.map((x) => Math.floor(x));
  const order = exact
    .map((x, i) => [x - Math.floor(x), i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  let left = free - shares.reduce((a, b) => a + b, 0);
  for (const [, i] of order) {
    if (left <= 0) break;
    shares[i]! += 1;
    left -= 1;
  }
  return shares.map((s) => s + floorBps);
}
