import { type Histogram, mulberry32, recordValue } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CANARY_POLICY } from './analysis.ts';
import type { Arm, InstallEvidence } from './evidence.ts';
import { gaussian } from './random-draws.ts';
import { judge } from './robust-testing.ts';

interface Behaviour {
  errorRate: number;
  medianMs: number;
  skewed?: boolean;
}
const HEALTHY: Behaviour = { errorRate: 0.005, medianMs: 8 };
const SLOWER: Behaviour = { errorRate: 0.005, medianMs: 8 * 1.6 };
const FAILING: Behaviour = { errorRate: 0.05, medianMs: 8 };
const DRIFTED: Behaviour = { errorRate: 0.005, medianMs: 8, skewed: true };
/** What a forger claims at its cap: everything fails, slowly, on skewed inputs... */
const FORGED_BAD: Behaviour = { errorRate: 1, medianMs: 400, skewed: true };
/** ...or a perfect release. */
const FORGED_GOOD: Behaviour = { errorRate: 0, medianMs: 1 };

let serial = 0;
function install(arm: Arm, b: Behaviour, events: number, random: () => number): InstallEvidence {
  const latency: Histogram = {};
  const energy = Array(10).fill(0);
  let errors = 0;
  for (let i = 0; i < events; i++) {
    if (random() < b.errorRate) {
      errors += 1;
      continue;
    }
    recordValue(latency, b.medianMs * Math.exp(0.35 * gaussian(random)));
    const u = random();
    energy[Math.min(9, Math.floor((b.skewed ? u * u : u) * 10))] += 1;
  }
  const n = serial++;
  return {
    deviceId: `install-${n}`,
    prefix: `10.${n % 200}.0.0/24`,
    arm,
    inferences: events - errors,
    errors,
    latency,
    features: { energy },
  };
}

/** 400 installs per arm, 60 events each (an hour at one a minute); 5% of them forged at 100x. */
function fleet(
  candidate: Behaviour,
  forged: Behaviour | null,
  seed: number,
  where: Arm[] = ['canary', 'control'],
) {
  const random = mulberry32(seed);
  const rows: InstallEvidence[] = [];
  for (const arm of ['canary', 'control'] as const) {
    const honestBehaviour = arm === 'canary' ? candidate : HEALTHY;
    for (let i = 0; i < 400; i++) {
      const lying = forged && where.includes(arm) && i % 20 === 0;
      rows.push(lying ? install(arm, forged, 6000, random) : install(arm, honestBehaviour, 60, random));
    }
  }
  return rows;
}

describe('analyzeEvidence with 5% of installs forged', () => {
  it('is healthy on a healthy canary, and halts each kind of regression, without forgers', () => {
    expect(judge(fleet(HEALTHY, null, 1)).decision).toBe('healthy');
    expect(judge(fleet(SLOWER, null, 2)).reasons.join()).toMatch(/p95 latency/);
    expect(judge(fleet(FAILING, null, 3)).reasons.join()).toMatch(/error rate/);
    expect(judge(fleet(DRIFTED, null, 4)).reasons.join()).toMatch(/drifted/);
  });

  it('does not halt a healthy canary on forged bad records (in the canary arm, or good ones in the control)', () => {
    for (const seed of [11, 12, 13]) {
      const v1 = judge(fleet(HEALTHY, FORGED_BAD, seed, ['canary']));
      expect(v1.decision, v1.reasons.join('; ')).toBe('healthy');
      const v2 = judge(fleet(HEALTHY, FORGED_GOOD, seed, ['control']));
      expect(v2.decision, v2.reasons.join('; ')).toBe('healthy');
    }
  });

  it('still halts every regression under a flood of forged healthy records (or bad ones in the control)', () => {
    for (const [regression, pattern] of [
      [SLOWER, /p95 latency/],
      [FAILING, /error rate/],
      [DRIFTED, /drifted/],
    ] as const) {
      const masked = judge(fleet(regression, FORGED_GOOD, 21, ['canary']));
      expect(masked.decision).toBe('halt');
      expect(masked.reasons.join()).toMatch(pattern);
      const dirtyControl = judge(fleet(regression, FORGED_BAD, 22, ['control']));
      expect(dirtyControl.decision).toBe('halt');
      expect(dirtyControl.reasons.join()).toMatch(pattern);
    }
  });

  it('would have been fooled without clipping and trimming', () => {
    // The same forged flood with robustness switched off: the guard above is what holds.
    const naive = { ...DEFAULT_CANARY_POLICY, trimShare: 0, weightClip: 1e9 };
    const rows = fleet(HEALTHY, FORGED_BAD, 11, ['canary']);
    expect(judge(rows, naive).decision).toBe('halt');
    const masked = fleet(FAILING, FORGED_GOOD, 21, ['canary']);
    expect(judge(masked, naive).decision).toBe('healthy');
  });

  it('gives no verdict on too few installs or networks', () => {
    const rows = fleet(FAILING, null, 5).map((r) => ({
      ...r,
      prefix: `10.${Number(r.deviceId.slice(8)) % 3}.0.0/24`,
    }));
    const v = judge(rows);
    expect(v.decision).toBe('insufficient-data');
    expect(v.reasons[0]).toMatch(/on 3 networks; a verdict needs 30 installs on 8 networks/);
    expect(judge(fleet(FAILING, null, 6).slice(0, 10)).decision).toBe('insufficient-data');
  });
});
