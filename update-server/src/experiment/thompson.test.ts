import { mulberry32 } from '@edgeship/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ArmEstimate,
  analyseExperiment,
  armEstimate,
  DEFAULT_DESIGN,
  type ExperimentDesign,
  type ExperimentVerdict,
  type UnitSums,
} from './analysis.ts';
import { allocateShares, probabilityBest } from './thompson.ts';

describe('probabilityBest', () => {
  it('puts nearly all the probability on an arm far better than the others, either direction', () => {
    const estimates = [
      { value: 0.3, se: 0.02 },
      { value: 0.5, se: 0.02 },
      { value: 0.31, se: 0.02 },
    ];
    const up = probabilityBest(estimates, 'increase', 1);
    expect(up[1]).toBeGreaterThan(0.999);
    expect(up.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
    const down = probabilityBest(estimates, 'decrease', 1);
    expect(down[1]).toBeLessThan(0.001);
    // Between the two close arms, the lower one is a little more likely the best (lower is better).
    expect(down[0]).toBeGreaterThan(down[2]!);
  });

  it('splits evenly between arms that are alike, within the Monte Carlo error', () => {
    const p = probabilityBest(
      [
        { value: 0.4, se: 0.05 },
        { value: 0.4, se: 0.05 },
      ],
      'increase',
      7,
    );
    // 20,000 draws: sd of a share about 0.0035.
    expect(Math.abs(p[0]! - 0.5)).toBeLessThan(0.02);
  });

  it('gives the same answer for the same seed', () => {
    const e = [
      { value: 0.4, se: 0.05 },
      { value: 0.42, se: 0.05 },
    ];
    expect(probabilityBest(e, 'increase', 3)).toEqual(probabilityBest(e, 'increase', 3));
  });
});

describe('allocateShares', () => {
  it('sums to the total exactly and keeps every arm at or above its floor', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 4 }),
        fc.integer({ min: 1000, max: 9999 }),
        fc.integer({ min: 0, max: 200 }),
        (probabilities, total, floor) => {
          const shares = allocateShares(total, probabilities, floor);
          expect(shares.reduce((a, b) => a + b, 0)).toBe(total);
          for (const s of shares) {
            expect(Number.isInteger(s)).toBe(true);
            expect(s).toBeGreaterThanOrEqual(floor);
          }
        },
      ),
    );
  });

  it('follows the probabilities above the floors', () => {
    expect(allocateShares(7500, [0.02, 0.96, 0.02], 500)).toEqual([620, 6260, 620]);
    expect(allocateShares(6000, [0, 0], 1000)).toEqual([3000, 3000]);
    expect(() => allocateShares(1000, [0.5, 0.5], 600)).toThrow(RangeError);
  });
});

/**
 * A/A/A under Thompson allocation, looked at every "day": installs arrive uniformly over the
 * buckets; each reports a few outcomes per look under the arm its bucket is in at that look
 * (a re-split moves the installs at the boundary, as the manifest's cumulative ranges do); the
 * shares follow the posterior once every arm has its minimum installs.
 */
function thompsonAA(seed: number, looks = 30, perLook = 60): ExperimentVerdict['decision'] {
  const random = mulberry32(seed);
  const treatmentsBps = 6000; // [0, 6000) split between two treatments; [6000, 9000) is the control
  const floorBps = 600;
  let shares = [3000, 3000];
  const units: Array<Map<number, UnitSums>> = [new Map(), new Map(), new Map()];
  const installs: Array<{ bucket: number; rate: number }> = [];
  const carried = new Map<string, number>();
  for (let look = 0; look < looks; look++) {
    for (let k = 0; k < perLook; k++) {
      installs.push({ bucket: Math.floor(random() * 9000), rate: 0.2 + random() * 0.2 });
    }
    for (const [id, install] of installs.entries()) {
      if (random() < 0.5) continue; // not every install reports every day
      const arm = install.bucket >= treatmentsBps ? 0 : install.bucket < shares[0]! ? 1 : 2;
      const n = 1 + Math.floor(random() * 3);
      let sum = 0;
      for (let j = 0; j < n; j++) if (random() < install.rate) sum += 1;
      const before = units[arm]!.get(id) ?? { n: 0, sum: 0 };
      units[arm]!.set(id, { n: before.n + n, sum: before.sum + sum });
    }
    const arms = units.map((m, i) => ({ release: `1.${i}.0`, units: [...m.values()] }));
    const verdict = analyseExperiment(arms, AA_DESIGN, carried);
    for (const c of verdict.comparisons) carried.set(c.release, c.p);
    if (verdict.decision === 'stopped-for-harm' || verdict.decision === 'winner') return verdict.decision;
    const estimates = arms.slice(1).map((a) => armEstimate(a.units));
    if (estimates.every((e) => e && e.installs >= AA_DESIGN.minInstallsPerArm)) {
      const p = probabilityBest(estimates as ArmEstimate[], 'increase', seed * 1000 + look, 2000);
      shares = allocateShares(treatmentsBps, p, floorBps);
    }
  }
  return 'running';
}

const AA_DESIGN: ExperimentDesign = { ...DEFAULT_DESIGN, alpha: 0.05, minimumEffect: 0.05 };

describe('the harm stop under Thompson allocation', () => {
  // The mSPRT's likelihood ratio stays a martingale when the allocation depends only on past data;
  // what could break it is the plug-in variance of a small arm: this checks it holds up.
  it('stops at most alpha of 150 seeded A/A/A experiments, looked at 30 times each', () => {
    const runs = 150;
    let stopped = 0;
    for (let seed = 1; seed <= runs; seed++) if (thompsonAA(seed) !== 'running') stopped++;
    // Measured: 1 of these 150 (0.7%); 5 of 300 (1.7%) in a longer variant with 20,000 draws per look.
    expect(stopped / runs).toBeLessThanOrEqual(AA_DESIGN.alpha);
  });
});
