import { describe, expect, it, vi } from 'vitest';
import { type Device, HEALTHY } from './device.ts';
import { CANDIDATE, CONTROL, Scenario } from './scenario.ts';

const fleetOf = (n: number, onCandidate: number) =>
  Array.from(
    { length: n },
    (_, i) => ({ active: new Map([['m', i < onCandidate ? CANDIDATE : CONTROL]]) }) as unknown as Device,
  );

describe('Scenario accounting', () => {
  it('counts exposure in device-minutes and the time until 99% of the devices left a halted candidate', () => {
    const sc = new Scenario({ name: 'm', model: 'm', seed: 1, candidate: HEALTHY });
    sc.account(fleetOf(1000, 10), 5, 5); // 1% on the candidate, no halt yet
    expect(sc.candidateDeviceMinutes).toBe(50);
    expect(sc.fleetDeviceMinutes).toBe(5000);

    sc.noteHalt({ state: 'halted', reason: 'slow', updatedAt: new Date(0).toISOString() }, 2);
    sc.account(fleetOf(1000, 200), 5, 10); // at the halt (tick 2): 200 on it
    expect(sc.onCandidateAtHalt).toBe(200);
    sc.account(fleetOf(1000, 3), 5, 15); // 3 > 1% of 200: not yet
    expect(sc.ninetyNineOffAfterMinutes).toBeNull();
    sc.account(fleetOf(1000, 2), 5, 20);
    expect(sc.ninetyNineOffAfterMinutes).toBe(10);
    expect(sc.candidateDeviceMinutes).toBe(50 + 1000 + 15 + 10);
  });

  it('records a halt once, at the stage it happened', () => {
    const sc = new Scenario({ name: 'm', model: 'm', seed: 1, candidate: HEALTHY, stages: [100, 1000] });
    expect(sc.noteHalt({ state: 'active', reason: null, updatedAt: new Date(0).toISOString() }, 1)).toBe(
      false,
    );
    expect(sc.noteHalt({ state: 'halted', reason: 'x', updatedAt: new Date(5).toISOString() }, 3)).toBe(true);
    expect(sc.noteHalt({ state: 'halted', reason: 'y', updatedAt: new Date(9).toISOString() }, 4)).toBe(
      false,
    );
    expect(sc.halt).toEqual({ atMs: 5, tick: 3, shareBps: 100, reason: 'x' });
  });

  it('fails a schedule-staged rollout that has not moved for maxTicks ticks only once the hold could have ended', () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const sc = new Scenario({
        name: 'm',
        model: 'm',
        seed: 1,
        candidate: HEALTHY,
        staging: 'schedule',
        schedule: { minStageMinutes: 0, minSamples: 0, segmentMaxWaitMinutes: 3 },
        maxTicks: 10,
      });
      const active = { state: 'active' };
      const step = (tick: number) => sc.step(tick, tick * 5, [], active);
      // Many ticks inside the hold's 3 real minutes (+1 to spare): a wait, not a stall.
      for (let tick = 1; tick <= 400; tick++) step(tick);
      vi.setSystemTime(3.5 * 60_000);
      expect(step(401)).toBe('continue');
      // The share moved: the count starts again.
      sc.observe({ state: 'active', shareBps: 450 });
      vi.setSystemTime(10 * 60_000);
      for (let tick = 402; tick <= 412; tick++) expect(step(tick)).toBe('continue');
      // Past maxTicks but not the hold's time: still a wait; past both, a schedule that never widens.
      expect(step(413)).toBe('continue');
      vi.setSystemTime(15 * 60_000);
      expect(() => step(413)).toThrow(/at 450 bps, unchanged for 11 ticks and 300 s/);
    } finally {
      vi.useRealTimers();
    }
  });
});
