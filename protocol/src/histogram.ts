/**
 * Log-bucketed latency histogram, mergeable by adding counts, so percentiles can be read off
 * the sum of a whole fleet. Bucket i holds values in (MIN * GROWTH^(i-1), MIN * GROWTH^i];
 * bucket 0 holds everything at or below MIN. Relative bucket width is 10%.
 */
export const HISTOGRAM_MIN_MS = 0.01;
export const HISTOGRAM_GROWTH = 1.1;
export const HISTOGRAM_BUCKETS = 200; // up to 0.01 ms * 1.1^199, about 1.8 million seconds

/** Sparse counts: bucket index → count. */
export type Histogram = Record<string, number>;

export function bucketOf(valueMs: number): number {
  if (!(valueMs > HISTOGRAM_MIN_MS)) return 0;
  const i = Math.ceil(Math.log(valueMs / HISTOGRAM_MIN_MS) / Math.log(HISTOGRAM_GROWTH) - 1e-9);
  return Math.min(i, HISTOGRAM_BUCKETS - 1);
}

/** Upper bound of a bucket, the value reported for a percentile that falls in it. */
export function bucketUpperBound(index: number): number {
  return HISTOGRAM_MIN_MS * HISTOGRAM_GROWTH ** index;
}

export function recordValue(h: Histogram, valueMs: number, count = 1): void {
  const key = String(bucketOf(valueMs));
  h[key] = (h[key] ?? 0) + count;
}

export function mergeHistograms(...parts: Histogram[]): Histogram {
  const out: Histogram = {};
  for (const part of parts) for (const [k, n] of Object.entries(part)) out[k] = (out[k] ?? 0) + n;
  return out;
}

export function histogramCount(h: Histogram): number {
  return Object.values(h).reduce((a, b) => a + b, 0);
}

/** The q-quantile (0..1) as its bucket's upper bound; null for an empty histogram. */
export function histogramQuantile(h: Histogram, q: number): number | null {
  const entries = Object.entries(h)
    .map(([k, n]) => [Number(k), n] as const)
    .filter(([, n]) => n > 0)
    .sort((a, b) => a[0] - b[0]);
  const total = entries.reduce((a, [, n]) => a + n, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [index, n] of entries) {
    seen += n;
    if (seen >= rank) return bucketUpperBound(index);
  }
  return bucketUpperBound(entries[entries.length - 1]![0]);
}

/** Index of the bin a value falls in, for bins split at ascending `edges` (see MonitoredFeature). */
export function binIndex(edges: readonly number[], value: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (value >= edges[mid]!) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
