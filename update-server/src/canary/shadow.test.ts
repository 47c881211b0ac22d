import { type Histogram, recordValue } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import { type ShadowEvidence, shadowVerdict } from './shadow.ts';

const latency = (medianMs: number): Histogram => {
  const h: Histogram = {};
  for (let i = 0; i < 500; i++) recordValue(h, medianMs * (0.8 + (0.4 * i) / 500));
  return h;
};
const evidence = (over: Partial<ShadowEvidence> = {}): ShadowEvidence => ({
  candidate: '1.1.0',
  against: '1.0.0',
  devices: 120,
  compared: 5000,
  agreements: 4960,
  candidateLatencyMs: latency(9),
  activeLatencyMs: latency(8),
  ...over,
});

describe('shadowVerdict', () => {
  it('calls a candidate that agrees and keeps up ready for a canary', () => {
    const v = shadowVerdict(evidence());
    expect(v.decision).toBe('ready');
    expect(v.evidence.agreement).toBeCloseTo(0.992);
    // 9 vs 8 ms, as the histograms' 10% buckets see it.
    expect(v.evidence.latencyRatio).toBeGreaterThan(1);
    expect(v.evidence.latencyRatio).toBeLessThanOrEqual(1.25);
  });

  it('says why a candidate is not ready: agreement, latency, or both', () => {
    const disagrees = shadowVerdict(evidence({ agreements: 4700 }));
    expect(disagrees.decision).toBe('not-ready');
    expect(disagrees.reasons.join()).toMatch(/agreement 94\.00% with 1\.0\.0, below 98\.00%/);
    const slow = shadowVerdict(evidence({ candidateLatencyMs: latency(12) }));
    expect(slow.decision).toBe('not-ready');
    expect(slow.reasons.join()).toMatch(/p95 latency .* beyond 1\.25x/);
    expect(
      shadowVerdict(evidence({ agreements: 4000, candidateLatencyMs: latency(20) })).reasons,
    ).toHaveLength(2);
  });

  it('gives no verdict on too few comparisons or devices', () => {
    expect(shadowVerdict(evidence({ compared: 300, agreements: 300 })).decision).toBe('insufficient-data');
    expect(shadowVerdict(evidence({ devices: 5 })).decision).toBe('insufficient-data');
  });
});
