// The install-level canary analysis on fleets that look like real ones (canary/fleet-model.ts):
// device speeds log-normal (sigma 0.8), 1% flaky devices on every release, four browsers, three
// backends; each canary watched over 20 looks while installs join and report. Seeded: the same
// numbers every run.
import { describe, expect, it } from 'vitest';
import { type ArmStats, analyzeCanary, DEFAULT_CANARY_POLICY } from './analysis.ts';
import { type FleetModel, NO_REGRESSION, REAL_FLEET, watchCanary } from './fleet-model.ts';

const HEALTHY_RUNS = 100;
const SMALL: FleetModel = { ...REAL_FLEET, canaryInstalls: 150, controlInstalls: 600, looks: 20 };

describe('install-level canary analysis, heterogeneous devices, repeated looks', () => {
  it(`halts no more than the declared rate of ${HEALTHY_RUNS} healthy canaries over 20 looks each`, () => {
    const halted: string[] = [];
    let judged = 0;
    for (let seed = 1; seed <= HEALTHY_RUNS; seed++) {
      const run = watchCanary(SMALL, NO_REGRESSION, seed);
      if (run.firstVerdictAt !== null && run.firstVerdictAt <= 10) judged += 1;
      if (run.haltedAt !== null) halted.push(`seed ${seed}: ${run.verdict.reasons.join('; ')}`);
    }
    // Every canary was judged at 10 looks or more: the test watched real verdicts, not waiting.
    expect(judged).toBe(HEALTHY_RUNS);
    expect(halted.length, halted.join('\n')).toBeLessThanOrEqual(DEFAULT_CANARY_POLICY.alpha * HEALTHY_RUNS);
    expect(halted).toEqual([]); // the goal: none at all
  }, 300_000);

  it('the same fleets do halt healthy canaries when inferences are pooled as if independent', () => {
    // The rule this replaced: pooled p95 across all inferences, 1.25x, at every look.
    let halts = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const run = watchCanary({ ...SMALL, looks: 10 }, NO_REGRESSION, seed, DEFAULT_CANARY_POLICY, pooled);
      if (run.haltedAt !== null) halts += 1;
    }
    expect(halts).toBeGreaterThan(0);
  }, 120_000);

  it('halts a 1.25x slowdown on every device', () => {
    const fleet: FleetModel = { ...REAL_FLEET, canaryInstalls: 500, controlInstalls: 1000 };
    for (const seed of [1, 2, 3, 4, 5]) {
      const run = watchCanary(fleet, { latencyFactor: 1.25 }, seed);
      expect(run.haltedAt, `seed ${seed}`).not.toBeNull();
      expect(run.verdict.reasons.join()).toMatch(/p95 latency/);
    }
  }, 120_000);

  it('halts a regression confined to one browser, and names it; the other browsers test clean', () => {
    const fleet: FleetModel = { ...REAL_FLEET, canaryInstalls: 400, controlInstalls: 1000 };
    const regression = { errorRate: 0.05, only: { browser: 'firefox' } };
    for (const seed of [1, 2, 3]) {
      const run = watchCanary(fleet, regression, seed);
      expect(run.haltedAt, `seed ${seed}`).not.toBeNull();
      const tests = run.verdict.evidence.tests ?? [];
      expect(tests.filter((t) => t.regressed).map((t) => t.scope)).toContain('browser=firefox');
      for (const other of ['browser=chrome', 'browser=safari']) {
        expect(tests.find((t) => t.scope === other && t.criterion === 'errors')?.regressed).toBe(false);
      }
      expect(run.verdict.evidence.segments?.browser).toHaveProperty('firefox');
      // The same fleet without the regression goes on.
      expect(watchCanary(fleet, NO_REGRESSION, seed).haltedAt).toBeNull();
    }
  }, 120_000);
});

/** The old pooled analysis, as a judge for watchCanary. */
function pooled(rows: Parameters<NonNullable<Parameters<typeof watchCanary>[4]>>[0]) {
  const sum = (arm: 'canary' | 'control'): ArmStats => {
    const s: ArmStats = { version: arm, inferences: 0, errors: 0, latencyMs: {}, features: {} };
    for (const r of rows.filter((x) => x.arm === arm)) {
      s.inferences += r.inferences;
      s.errors += r.errors;
      for (const [k, n] of Object.entries(r.latency)) s.latencyMs[k] = (s.latencyMs[k] ?? 0) + n;
    }
    return s;
  };
  return analyzeCanary(sum('canary'), sum('control'), DEFAULT_CANARY_POLICY, new Set(['latency']));
}
