import { binIndex } from './histogram.ts';
import type { MonitoredFeature } from './release.ts';

/** A tensor's values as the runtime and the publisher's profiler both see them. */
export type NumericArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint8Array
  | Int8Array
  | Uint16Array
  | BigInt64Array
  | number[];

/**
 * The scalar a monitored feature reads off one inference. One implementation, used by the
 * publisher to profile the reference and by the device to count the field data: no skew.
 */
export function reduceFeature(reduce: MonitoredFeature['source']['reduce'], values: NumericArray): number {
  const n = values.length;
  if (n === 0) return Number.NaN;
  const at = (i: number) => Number(values[i]);
  switch (reduce) {
    case 'first':
      return at(0);
    case 'mean': {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += at(i);
      return sum / n;
    }
    case 'rms': {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += at(i) * at(i);
      return Math.sqrt(sum / n);
    }
    case 'max': {
      let best = at(0);
      for (let i = 1; i < n; i++) best = Math.max(best, at(i));
      return best;
    }
    case 'argmax': {
      let best = 0;
      for (let i = 1; i < n; i++) if (at(i) > at(best)) best = i;
      return best;
    }
  }
}

/** Adds one observation of a feature to its per-bin counts (length = edges + 1). */
export function countFeature(counts: number[], feature: MonitoredFeature, value: number): void {
  if (!Number.isFinite(value)) return;
  const i = binIndex(feature.binEdges, value);
  counts[i] = (counts[i] ?? 0) + 1;
}

/** Shares per bin from counts; the reference a publisher puts in the release. */
export function normalizeCounts(counts: readonly number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => (total === 0 ? 0 : c / total));
}
