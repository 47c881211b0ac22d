import { describe, expect, it } from 'vitest';
import { runCanaries } from './canaries.ts';
import { HEALTHY, REGRESSIONS } from './device.ts';

/**
 * The in-process canaries judge what the server would: a regressed canary on the same fleet is
 * halted, on the evidence its arms really hold (not a runner that never halts).
 */
describe('in-process canaries on one simulated fleet', () => {
  it('promotes healthy canaries after every look and halts a slower one', async () => {
    const healthy = await runCanaries({ devices: 1500, seed: 3, canaries: 2, candidate: HEALTHY });
    expect(healthy.runs.map((r) => r.outcome)).toEqual(['promoted', 'promoted']);
    for (const r of healthy.runs) {
      expect(r.looks).toBe(24);
      expect(r.verdictLooks).toBeGreaterThanOrEqual(12);
      expect(r.installs.canary).toBeGreaterThan(1000);
      expect(r.installs.control).toBeGreaterThan(400);
    }
    const slower = await runCanaries({ devices: 1500, seed: 3, canaries: 1, candidate: REGRESSIONS.slower });
    const [run] = slower.runs;
    expect(run!.outcome).toBe('halted');
    expect(run!.haltReason).toMatch(/p95 latency/);
    expect(run!.haltedAtShareBps).toBeLessThanOrEqual(5000);
  }, 120_000);
});
