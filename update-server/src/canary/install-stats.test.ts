import { mulberry32 } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import {
  alwaysValidP,
  clusteredRate,
  fencedTrimmedMean,
  holm,
  marginZ,
  trimmedMean,
} from './install-stats.ts';

describe('install-level statistics', () => {
  it('widens the error-rate interval when errors cluster on a few installs', () => {
    // 1,000 installs, 20 events each, 100 errors: spread evenly, or all on 5 flaky installs.
    const even = Array.from({ length: 1000 }, (_, i) => ({
      events: 20,
      errors: i % 10 === 0 ? 1 : 0,
      weight: 1,
    }));
    const clustered = Array.from({ length: 1000 }, (_, i) => ({
      events: 20,
      errors: i < 5 ? 20 : 0,
      weight: 1,
    }));
    const a = clusteredRate(even)!;
    const b = clusteredRate(clustered)!;
    expect(a.value).toBeCloseTo(b.value);
    expect(b.se).toBeGreaterThan(3 * a.se);
    // The even case is close to the binomial error of 20,000 independent events.
    expect(a.se).toBeCloseTo(Math.sqrt((0.005 * 0.995) / 20_000), 3);
  });

  it("trims extreme installs out of the mean, with Yuen's winsorised error", () => {
    const random = mulberry32(3);
    const values = Array.from({ length: 200 }, () => random());
    const forged = [...values.slice(0, 190), ...Array(10).fill(1e6)];
    const t = trimmedMean(forged, 0.1)!;
    expect(t.value).toBeLessThan(0.6);
    expect(t.se).toBeLessThan(0.05);
    expect(marginZ({ value: 1, se: 0.1, units: 9 }, { value: 0.5, se: 0, units: 9 }, 0.2)).toBeCloseTo(3);
  });

  it('leaves installs beyond the fence out whole, so that forgers at one end do not shift the trim', () => {
    const random = mulberry32(4);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const honest = Array.from({ length: 4000 }, gauss);
    const forged = [...honest.slice(0, 3800), ...Array(200).fill(50)];
    // 5% far above: trimming 10% drops them and only 5% of the honest top, all 10% of the bottom.
    expect(trimmedMean(forged, 0.1)!.value).toBeGreaterThan(0.06);
    const fenced = fencedTrimmedMean(forged, 0.1)!;
    expect(Math.abs(fenced.value)).toBeLessThan(0.03);
    expect(fenced.units).toBeGreaterThan(3750);
    expect(fenced.units).toBeLessThan(3800);
  });

  it('gives an always-valid p-value that equals alpha on its boundary and grows with the looks', () => {
    const alpha = 0.01;
    const horizon = 200;
    const rho2 = (-2 * Math.log(alpha) + Math.log(-2 * Math.log(alpha) + 1)) / horizon;
    const v = 100 * rho2;
    const boundary = Math.sqrt(((v + 1) / v) * 2 * Math.log(Math.sqrt(v + 1) / alpha));
    expect(alwaysValidP(boundary, 100, alpha, horizon)).toBeCloseTo(alpha, 6);
    // Stricter than a fixed-sample test: z = 3.09 (p = 0.001 once) is not enough here.
    expect(alwaysValidP(3.09, 100, alpha, horizon)).toBeGreaterThan(alpha);
    expect(alwaysValidP(-1, 100, alpha, horizon)).toBe(1);
  });

  it('rejects step-down with Holm', () => {
    expect(holm([0.001, 0.02, 0.04, 0.5], 0.05)).toEqual([true, false, false, false]);
    expect(holm([0.01, 0.012, 0.02, 0.5], 0.05)).toEqual([true, true, true, false]);
    expect(holm([0.01, 0.02, 0.03, 0.5], 0.05)).toEqual([true, false, false, false]);
    expect(holm([0.3, 0.004], 0.01)).toEqual([false, true]);
  });
});
