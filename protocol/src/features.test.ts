import { describe, expect, it } from 'vitest';
import { countFeature, normalizeCounts, reduceFeature } from './features.ts';
import type { MonitoredFeature } from './release.ts';

describe('monitored features', () => {
  it('reduces a tensor to one scalar', () => {
    const values = new Float32Array([3, -4, 0, 1]);
    expect(reduceFeature('rms', values)).toBeCloseTo(Math.sqrt(26 / 4), 6);
    expect(reduceFeature('mean', values)).toBe(0);
    expect(reduceFeature('max', values)).toBe(3);
    expect(reduceFeature('argmax', values)).toBe(0);
    expect(reduceFeature('first', new BigInt64Array([7n]))).toBe(7);
  });

  it('counts values into the bins of the reference', () => {
    const feature: MonitoredFeature = {
      name: 'rms',
      source: { from: 'input', tensor: 'x', reduce: 'rms' },
      binEdges: [0.1, 0.5],
      reference: [0.5, 0.25, 0.25],
    };
    const counts = [0, 0, 0];
    for (const v of [0, 0.05, 0.1, 0.7, Number.NaN]) countFeature(counts, feature, v);
    expect(counts).toEqual([2, 1, 1]);
    expect(normalizeCounts(counts)).toEqual([0.5, 0.25, 0.25]);
  });
});
