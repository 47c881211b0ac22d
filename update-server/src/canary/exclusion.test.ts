// Segment exclusion (the channel policy 'exclude') on the fleet model's heterogeneous devices:
// a regression confined to one browser excludes that browser and the rest is judged healthy; a
// regression on every device finds no segment to blame and stays a halt.
import { describe, expect, it } from 'vitest';
import { type CanaryVerdict, DEFAULT_CANARY_POLICY } from './analysis.ts';
import type { InstallEvidence } from './evidence.ts';
import { chooseExclusion, exclusionCandidates, withoutExcluded } from './exclusion.ts';
import { type FleetModel, REAL_FLEET, type Regression, watchCanary } from './fleet-model.ts';
import { analyzeEvidence } from './robust.ts';

const FLEET: FleetModel = { ...REAL_FLEET, canaryInstalls: 400, controlInstalls: 1000 };
const judge = (rows: InstallEvidence[]): CanaryVerdict =>
  analyzeEvidence(
    rows,
    { version: '1.1.0', references: {} },
    { version: '1.0.0', references: {} },
    DEFAULT_CANARY_POLICY,
  );

/** Watches a canary to its halt and returns the halting verdict with the rows it judged. */
function haltOn(regression: Regression, seed: number) {
  let seen: InstallEvidence[] = [];
  const run = watchCanary(FLEET, regression, seed, DEFAULT_CANARY_POLICY, (rows) => {
    seen = rows;
    return judge(rows);
  });
  expect(run.haltedAt, `seed ${seed}`).not.toBeNull();
  return { verdict: run.verdict, rows: seen };
}

describe('segment exclusion', () => {
  it('excludes the one regressed browser; the rest of the fleet, judged again without it, is not halted', () => {
    for (const seed of [1, 2, 3]) {
      const { verdict, rows } = haltOn({ errorRate: 0.05, only: { browser: 'firefox' } }, seed);
      expect(exclusionCandidates(verdict)).toContainEqual({ dimension: 'browser', value: 'firefox' });
      const exclusion = chooseExclusion(rows, verdict, [], judge, DEFAULT_CANARY_POLICY);
      expect(exclusion, `seed ${seed}`).not.toBeNull();
      expect(exclusion!.segments).toEqual([{ dimension: 'browser', value: 'firefox' }]);
      expect(exclusion!.rest.decision).toBe('healthy');
      // The rest still has both arms of every other browser.
      const rest = withoutExcluded(rows, exclusion!.segments);
      expect(rest.some((r) => r.segment?.browser === 'firefox')).toBe(false);
      expect(rest.filter((r) => r.arm === 'canary').length).toBeGreaterThan(100);
    }
  }, 120_000);

  it('finds nothing to exclude when every device regressed, so the rollout halts', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const { verdict, rows } = haltOn({ errorRate: 0.05 }, seed);
      expect(chooseExclusion(rows, verdict, [], judge, DEFAULT_CANARY_POLICY), `seed ${seed}`).toBeNull();
    }
  }, 120_000);

  it('never excludes "other" or "unknown", and not past the manifest bound', () => {
    const test = (scope: string) => ({
      scope,
      criterion: 'errors' as const,
      canary: 0.05,
      control: 0.01,
      installs: { canary: 40, control: 40 },
      z: 5,
      p: 1e-6,
      regressed: true,
    });
    const verdict = {
      decision: 'halt',
      reasons: ['x'],
      evidence: { tests: [test('all'), test('browser=other'), test('os=unknown'), test('backend=webgpu')] },
    } as unknown as CanaryVerdict;
    expect(exclusionCandidates(verdict)).toEqual([{ dimension: 'backend', value: 'webgpu' }]);
    const full = Array.from({ length: 8 }, (_, i) => ({
      dimension: 'browserVersion' as const,
      value: `chrome-${i}`,
    }));
    expect(chooseExclusion([], verdict, full, judge, DEFAULT_CANARY_POLICY)).toBeNull();
  });
});
