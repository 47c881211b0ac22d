import { mulberry32 } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import {
  bootstrap,
  growth,
  mean,
  median,
  percentile,
  ratio,
  round,
  summarize,
  trimmedMean,
} from './stats.ts';

describe('benchmark statistics', () => {
  it('takes the middle sample, or the mean of the two middle ones, regardless of order', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(median([])).toBeNaN();
  });

  it('interpolates percentiles linearly between ranks', () => {
    const xs = [10, 20, 30, 40, 50];
    expect(percentile(xs, 0)).toBe(10);
    expect(percentile(xs, 100)).toBe(50);
    expect(percentile(xs, 25)).toBe(20);
    expect(percentile(xs, 90)).toBeCloseTo(46, 10);
    expect(
      percentile(
        Array.from({ length: 101 }, (_, i) => i),
        99,
      ),
    ).toBe(99);
    expect(() => percentile(xs, 101)).toThrow(RangeError);
  });

  it('does not reorder the caller’s samples', () => {
    const xs = [3, 1, 2];
    median(xs);
    expect(xs).toEqual([3, 1, 2]);
  });

  it('gives NaN for a ratio to a zero or missing baseline', () => {
    expect(ratio(3, 2)).toBe(1.5);
    expect(ratio(1, 0)).toBeNaN();
    expect(ratio(1, Number.NaN)).toBeNaN();
    expect(growth(100, 110)).toBeCloseTo(0.1, 12);
    expect(growth(100, 90)).toBeCloseTo(-0.1, 12);
  });

  it('summarizes and rounds', () => {
    expect(mean([1, 2, 3, 6])).toBe(3);
    expect(summarize([4, 1, 3, 2])).toMatchObject({ n: 4, median: 2.5, min: 1, max: 4 });
    expect(round(1.23456, 2)).toBe(1.23);
    expect(round(Number.NaN)).toBeNaN();
  });
});

describe('trimmedMean and bootstrap', () => {
  it('trims a quarter from each end by default and ignores the outliers there', () => {
    expect(trimmedMean([1, 2, 3, 4, 100, -100, 2.5, 3.5])).toBe(2.75); // 2, 2.5, 3, 3.5
    expect(trimmedMean([5])).toBe(5);
    expect(trimmedMean([])).toBeNaN();
  });

  it('gives an interval around the median that narrows with more samples, the same for the same seed', () => {
    const random = mulberry32(7);
    const draw = (n: number) => Array.from({ length: n }, () => 10 + (random() - 0.5) * 4);
    const small = bootstrap(draw(50));
    const large = bootstrap(draw(1000), { resamples: 500 });
    expect(small.low).toBeLessThan(10);
    expect(small.high).toBeGreaterThan(10);
    expect(large.low).toBeGreaterThan(9.7);
    expect(large.high).toBeLessThan(10.3);
    expect(large.high - large.low).toBeLessThan((small.high - small.low) / 3);
    const samples = draw(100);
    expect(bootstrap(samples)).toEqual(bootstrap(samples));
    expect(bootstrap([])).toEqual({ low: Number.NaN, high: Number.NaN });
  });
});
