import { type Histogram, recordValue } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import { type ArmStats, analyzeCanary } from './analysis.ts';

function latencies(values: number[]): Histogram {
  const h: Histogram = {};
  for (const v of values) recordValue(h, v);
  return h;
}

function arm(
  version: string,
  inferences: number,
  errors: number,
  latencyMs: number,
  counts = [25, 50, 25],
): ArmStats {
  return {
    version,
    inferences,
    errors,
    latencyMs: latencies(Array.from({ length: 200 }, (_, i) => latencyMs * (0.8 + (0.4 * i) / 200))),
    features: { energy: { counts, reference: [0.25, 0.5, 0.25] } },
  };
}

describe('analyzeCanary', () => {
  it('waits for enough samples before judging', () => {
    expect(analyzeCanary(arm('2.0.0', 100, 50, 5), arm('1.0.0', 100, 0, 5)).decision).toBe(
      'insufficient-data',
    );
  });

  it('calls a canary that matches its control healthy', () => {
    const verdict = analyzeCanary(arm('2.0.0', 5000, 10, 5), arm('1.0.0', 5000, 12, 5));
    expect(verdict.decision).toBe('healthy');
    expect(verdict.reasons).toEqual([]);
  });

  it('halts a canary that fails clearly more often', () => {
    const verdict = analyzeCanary(arm('2.0.0', 5000, 300, 5), arm('1.0.0', 5000, 10, 5));
    expect(verdict.decision).toBe('halt');
    expect(verdict.reasons[0]).toMatch(/error rate/);
    expect(verdict.evidence.errorRateZ).toBeGreaterThan(3.09);
  });

  it('does not halt on an error-rate gap that noise can explain', () => {
    // 3.8% vs 1.9%: beyond the 1% margin, but 20 vs 10 errors in 520 attempts gives z = 1.86 < 3.09.
    expect(analyzeCanary(arm('2.0.0', 500, 20, 5), arm('1.0.0', 510, 10, 5)).decision).toBe('healthy');
  });

  it('does not halt a healthy canary whose early sample is unlucky', () => {
    // 8 failures in 500 (1.6%) vs 0.5% on a large control: past the 1% margin, and the plain
    // difference test says z = 3.5, but "worse by more than the margin" is nowhere near shown.
    // Early looks like this one, repeated as data arrives, were what halted healthy canaries.
    const verdict = analyzeCanary(arm('2.0.0', 492, 8, 5), arm('1.0.0', 19_900, 100, 5));
    expect(verdict.evidence.errorRateZ).toBeGreaterThan(3.09);
    expect(verdict.evidence.errorRateMarginZ).toBeLessThan(1);
    expect(verdict.decision).toBe('healthy');
  });

  it('halts a canary whose p95 latency regressed beyond the margin', () => {
    const verdict = analyzeCanary(arm('2.0.0', 5000, 0, 9), arm('1.0.0', 5000, 0, 5));
    expect(verdict.decision).toBe('halt');
    expect(verdict.reasons.join()).toMatch(/p95 latency/);
  });

  it('halts on drift seen only on the canary, not on drift the control sees too', () => {
    const drifted = [80, 15, 5];
    expect(analyzeCanary(arm('2.0.0', 5000, 0, 5, drifted), arm('1.0.0', 5000, 0, 5)).reasons.join()).toMatch(
      /drifted/,
    );
    expect(analyzeCanary(arm('2.0.0', 5000, 0, 5, drifted), arm('1.0.0', 5000, 0, 5, drifted)).decision).toBe(
      'healthy',
    );
  });
});
