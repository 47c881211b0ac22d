import { describe, expect, it } from 'vitest';
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
});
