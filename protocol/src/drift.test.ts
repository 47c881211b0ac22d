import { describe, expect, it } from 'vitest';
import {
  binnedKolmogorovSmirnov,
  jensenShannonDistance,
  measureDrift,
  populationStabilityIndex,
} from './drift.ts';

describe('drift statistics', () => {
  // Reference shares [0.5, 0.5], observed [0.9, 0.1], computed by hand:
  //   PSI = (0.9-0.5) ln(0.9/0.5) + (0.1-0.5) ln(0.1/0.5) = 0.4*0.587787 + 0.4*1.609438 = 0.878890
  //   M = [0.7, 0.3]; KL(P||M) = 0.9 log2(0.9/0.7) + 0.1 log2(0.1/0.3) = 0.326314 - 0.158496 = 0.167818
  //   KL(Q||M) = 0.5 log2(0.5/0.7) + 0.5 log2(0.5/0.3) = -0.242709 + 0.368483 = 0.125774
  //   JSD = (0.167818 + 0.125774) / 2 = 0.146796, distance = sqrt = 0.383140
  //   KS: CDFs after bin 0 are 0.9 and 0.5: 0.4
  it('matches hand-computed values', () => {
    expect(populationStabilityIndex([50, 50], [90, 10])).toBeCloseTo(0.87889, 4);
    expect(jensenShannonDistance([50, 50], [90, 10])).toBeCloseTo(0.38314, 4);
    expect(binnedKolmogorovSmirnov([50, 50], [90, 10])).toBeCloseTo(0.4, 10);
  });

  it('is zero for the same distribution whatever the sample size', () => {
    const report = measureDrift([0.2, 0.3, 0.5], [200, 300, 500]);
    expect(report.psi).toBeCloseTo(0, 12);
    expect(report.jsDistance).toBeCloseTo(0, 6);
    expect(report.ks).toBeCloseTo(0, 12);
    expect(report.drifted).toBe(false);
  });

  it('reaches its maximum for disjoint distributions', () => {
    expect(jensenShannonDistance([1, 0], [0, 1])).toBeCloseTo(1, 10);
    expect(binnedKolmogorovSmirnov([1, 0], [0, 1])).toBe(1);
    expect(measureDrift([1, 0], [0, 1]).drifted).toBe(true);
  });

  it('floors empty bins so PSI stays finite', () => {
    // (1e-4 - 0.5) ln(1e-4/0.5) + (1 - 0.5) ln(1/0.5) = 0.4999 * 8.517193 + 0.346574 = 4.604319
    expect(populationStabilityIndex([1, 1], [0, 10])).toBeCloseTo(4.60432, 4);
  });

  it('refuses histograms over different bins', () => {
    expect(() => populationStabilityIndex([1, 2], [1, 2, 3])).toThrow(RangeError);
  });
});
