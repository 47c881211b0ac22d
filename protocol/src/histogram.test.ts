import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  binIndex,
  bucketOf,
  type Histogram,
  histogramCount,
  histogramQuantile,
  mergeHistograms,
  recordValue,
} from './histogram.ts';

const latency = fc.double({ min: 0.001, max: 60_000, noNaN: true });

function exactQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

describe('latency histogram', () => {
  it('merges exactly: the merge of parts equals the histogram of all values', () => {
    fc.assert(
      fc.property(fc.array(fc.array(latency, { maxLength: 50 }), { maxLength: 8 }), (parts) => {
        const separate = parts.map((values) => {
          const h: Histogram = {};
          for (const v of values) recordValue(h, v);
          return h;
        });
        const whole: Histogram = {};
        for (const v of parts.flat()) recordValue(whole, v);
        expect(mergeHistograms(...separate)).toEqual(whole);
        expect(histogramCount(whole)).toBe(parts.flat().length);
      }),
    );
  });

  it('reads percentiles within one bucket of the exact percentile', () => {
    fc.assert(
      fc.property(
        fc.array(latency, { minLength: 1, maxLength: 300 }),
        fc.constantFrom(0.5, 0.95, 0.99),
        (values, q) => {
          const h: Histogram = {};
          for (const v of values) recordValue(h, v);
          const estimate = histogramQuantile(h, q)!;
          expect(Math.abs(bucketOf(estimate) - bucketOf(exactQuantile(values, q)))).toBeLessThanOrEqual(1);
        },
      ),
    );
  });

  it('has no percentile when empty', () => {
    expect(histogramQuantile({}, 0.5)).toBeNull();
  });
});

describe('binIndex', () => {
  it('puts values in (-inf, e0), [e0, e1), ..., [e_last, +inf)', () => {
    const edges = [0, 1, 2];
    expect([-5, 0, 0.5, 1, 1.99, 2, 10].map((v) => binIndex(edges, v))).toEqual([0, 1, 1, 2, 2, 3, 3]);
  });
});
