// Summary statistics for benchmark samples. Every reported figure is a median of several runs,
// and every comparison a ratio to a baseline measured in the same run.
import { mulberry32 } from '@edgeship/protocol';

/** Linear-interpolated percentile (p in 0..100) of the samples; NaN for none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  if (p < 0 || p > 100) throw new RangeError(`percentile ${p} is outside 0..100`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export function mean(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  return samples.reduce((a, b) => a + b, 0) / samples.length;
}

/** value / baseline; NaN when the baseline is zero or missing, so a bad ratio never looks good. */
export function ratio(value: number, baseline: number): number {
  if (!Number.isFinite(value) || !Number.isFinite(baseline) || baseline === 0) return Number.NaN;
  return value / baseline;
}

export interface Summary {
  n: number;
  median: number;
  p10: number;
  p90: number;
  min: number;
  max: number;
}

export function summarize(samples: readonly number[]): Summary {
  return {
    n: samples.length,
    median: median(samples),
    p10: percentile(samples, 10),
    p90: percentile(samples, 90),
    min: samples.length ? Math.min(...samples) : Number.NaN,
    max: samples.length ? Math.max(...samples) : Number.NaN,
  };
}

/** Rounds to `digits` significant decimals for reports (JSON keeps what this returns). */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Relative growth from `from` to `to` (0.1 = +10%). */
export function growth(from: number, to: number): number {
  return ratio(to, from) - 1;
}

/** The mean of the samples between the p-th and the (100 - p)-th percentile (p = 25: the interquartile mean). */
export function trimmedMean(samples: readonly number[], p = 25): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const cut = Math.floor((p / 100) * sorted.length);
  const kept = sorted.slice(cut, sorted.length - cut);
  return mean(kept.length ? kept : sorted);
}

/**
 * A percentile-bootstrap interval for `statistic` (default the median): `resamples` resamples
 * with replacement from a seeded generator (a report is reproducible from its raw samples);
 * returns the (1 - level) / 2 and (1 + level) / 2 percentiles of the resampled statistic.
 */
export function bootstrap(
  samples: readonly number[],
  { level = 0.95, resamples = 2000, seed = 0x5eed, statistic = median } = {},
): { low: number; high: number } {
  if (samples.length === 0) return { low: Number.NaN, high: Number.NaN };
  const random = mulberry32(seed);
  const values: number[] = [];
  const draw = new Array<number>(samples.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < samples.length; i++) draw[i] = samples[Math.floor(random() * samples.length)]!;
    values.push(statistic(draw));
  }
  return {
    low: percentile(values, ((1 - level) / 2) * 100),
    high: percentile(values, ((1 + level) / 2) * 100),
  };
}
