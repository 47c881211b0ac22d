// The experiment statistics over seeded synthetic fleets, looked at after every day: a real
// effect is found, and with no effect the share of experiments that ever declare a winner (or
// harm) stays at or below alpha, however often they are looked at (the test that the sequential
// method is honest). Installs differ (base rate and outcomes per install), as real devices do.
import { mulberry32 } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import {
  type ArmData,
  analyseExperiment,
  DEFAULT_DESIGN,
  type ExperimentDesign,
  type ExperimentVerdict,
  sampleSize,
  type UnitSums,
} from './analysis.ts';

const BASE_RATE = 0.3;

/** One install's outcomes: its own rate around the arm's, and 1 to 9 outcomes. */
function install(random: () => number, rate: number): UnitSums {
  const own = Math.min(0.99, Math.max(0.01, rate + (random() - 0.5) * 0.2));
  const n = 1 + Math.floor(random() * 9);
  let sum = 0;
  for (let i = 0; i < n; i++) if (random() < own) sum += 1;
  return { n, sum };
}

/**
 * A seeded experiment: `effects[i]` is arm i's rate minus the control's (effects[0] = 0); each
 * look adds `perLook` installs to every arm, and every look is analysed (with the p carried).
 * Returns the first final verdict, or the last look's.
 */
function simulate(
  seed: number,
  effects: number[],
  design: ExperimentDesign,
  looks = 40,
  perLook = 25,
): ExperimentVerdict {
  const random = mulberry32(seed);
  const arms: Array<ArmData & { units: UnitSums[] }> = effects.map((_, i) => ({
    release: `1.${i}.0`,
    units: [],
  }));
  const carried = new Map<string, number>();
  let verdict: ExperimentVerdict | null = null;
  for (let look = 0; look < looks; look++) {
    for (const [i, arm] of arms.entries()) {
      for (let k = 0; k < perLook; k++) arm.units.push(install(random, BASE_RATE + effects[i]!));
    }
    verdict = analyseExperiment(arms, design, carried);
    for (const c of verdict.comparisons) carried.set(c.release, c.p);
    if (verdict.decision === 'winner' || verdict.decision === 'stopped-for-harm') return verdict;
  }
  return verdict!;
}

const design: ExperimentDesign = { ...DEFAULT_DESIGN, alpha: 0.05, minimumEffect: 0.05 };

describe('experiment analysis (mSPRT, installs as units)', () => {
  it('declares B the winner when it is better by a known effect', () => {
    const runs = 20;
    let winners = 0;
    for (let seed = 1; seed <= runs; seed++) {
      const v = simulate(seed, [0, 0.06], design);
      if (v.decision === 'winner' && v.winner === '1.1.0') winners++;
      // The reported effect is the true one within the sequence.
      const c = v.comparisons[0]!;
      expect(c.interval[0]).toBeLessThan(0.06);
      expect(c.interval[1]).toBeGreaterThan(0.06);
    }
    expect(winners).toBeGreaterThanOrEqual(0.9 * runs);
  });

  it('picks the better treatment of three arms, and stops a harmful one', () => {
    const three = simulate(7, [0, 0.0, 0.08], design);
    expect(three).toMatchObject({ decision: 'winner', winner: '1.2.0' });
    const harmful = simulate(8, [0, -0.08], design);
    expect(harmful).toMatchObject({ decision: 'stopped-for-harm', harmful: ['1.1.0'] });
  });

  it('keeps false winners at or below alpha over 200 seeded A/A experiments looked at 40 times each', () => {
    const runs = 200;
    let falseWinners = 0;
    let falseAny = 0;
    for (let seed = 1000; seed < 1000 + runs; seed++) {
      const v = simulate(seed, [0, 0], design);
      if (v.decision === 'winner') falseWinners++;
      if (v.decision === 'winner' || v.decision === 'stopped-for-harm') falseAny++;
    }
    expect(falseWinners / runs).toBeLessThanOrEqual(design.alpha);
    // Two-sided: winners and harms together are the test's false positives.
    expect(falseAny / runs).toBeLessThanOrEqual(design.alpha);
  });

  it('is what makes the difference: a fixed-sample z-test at every look finds false winners far above alpha', () => {
    let naive = 0;
    const runs = 200;
    for (let seed = 1000; seed < 1000 + runs; seed++) {
      const random = mulberry32(seed);
      const arms = [
        { release: 'a', units: [] as UnitSums[] },
        { release: 'b', units: [] as UnitSums[] },
      ];
      for (let look = 0; look < 40; look++) {
        for (const arm of arms) for (let k = 0; k < 25; k++) arm.units.push(install(random, BASE_RATE));
        const c = analyseExperiment(arms, design).comparisons[0]!;
        if (Math.abs(c.effect) / Math.hypot(c.treatment.se, c.controlEstimate.se) > 1.96) {
          naive++;
          break;
        }
      }
    }
    expect(naive / runs).toBeGreaterThan(3 * design.alpha);
  });

  it('says no detectable difference once an A/A sequence is inside ±minimumEffect', () => {
    const v = simulate(42, [0, 0], { ...design, minimumEffect: 0.05 }, 80, 50);
    expect(v.decision).toBe('no-detectable-difference');
    const [low, high] = v.comparisons[0]!.interval;
    expect(low).toBeGreaterThan(-0.05);
    expect(high).toBeLessThan(0.05);
  });

  it('waits for the minimum installs per arm, and estimates a sample size the simulation bears out', () => {
    const early = analyseExperiment(
      [
        {
          release: '1.0.0',
          units: [
            { n: 5, sum: 1 },
            { n: 3, sum: 1 },
          ],
        },
        {
          release: '1.1.0',
          units: [
            { n: 5, sum: 5 },
            { n: 3, sum: 3 },
          ],
        },
      ],
      design,
    );
    expect(early.decision).toBe('waiting');

    // Per-install sd of the simulated metric, measured on a large control sample.
    const random = mulberry32(5);
    const units = Array.from({ length: 20_000 }, () => install(random, BASE_RATE));
    const n = units.reduce((a, u) => a + u.n, 0);
    const rate = units.reduce((a, u) => a + u.sum, 0) / n;
    const meanN = n / units.length;
    const sd = Math.sqrt(units.reduce((a, u) => a + (u.sum - rate * u.n) ** 2, 0) / units.length) / meanN;
    const estimate = sampleSize(design, { sdPerInstall: sd, arms: 2, power: 0.8, installsPerDay: 500 });
    expect(estimate.installsPerArm).toBeGreaterThan(100);
    expect(estimate.installsPerArm).toBeLessThan(2000);
    expect(estimate.days).toBeCloseTo((estimate.installsPerArm * 2) / 500, 6);
    // At the estimate, an effect of exactly minimumEffect is found in most runs (power 0.8 asked).
    let found = 0;
    const looks = Math.ceil(estimate.installsPerArm / 25);
    for (let seed = 1; seed <= 40; seed++) {
      if (simulate(300 + seed, [0, design.minimumEffect], design, looks).decision === 'winner') found++;
    }
    expect(found / 40).toBeGreaterThanOrEqual(0.7);
  });
});
