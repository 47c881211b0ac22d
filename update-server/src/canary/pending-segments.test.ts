// Which segments hold a schedule's stage (pendingSegments): sizable ones the verdict could not
// judge on their own, and never one that holds every install (the verdict over all judged it).
import { describe, expect, it } from 'vitest';
import type { CanaryVerdict } from './analysis.ts';
import { pendingSegments } from './schedule.ts';

const verdictWith = (segmentInstalls: Record<string, Record<string, { canary: number; control: number }>>) =>
  ({ decision: 'healthy', reasons: [], evidence: { segmentInstalls } }) as unknown as CanaryVerdict;

describe('pendingSegments', () => {
  it('names a sizable segment short of canary installs, not one that holds the whole fleet', () => {
    const verdict = verdictWith({
      // Every install runs WASM: 28 canary installs, fewer than a segment verdict's 30, but the
      // verdict over all installs is that segment's verdict.
      backend: { wasm: { canary: 28, control: 52 } },
      // Firefox: 62.5% of the installs, 10 on the canary, enough in the control: it holds.
      // Chrome: short in both arms, so widening the canary would not give it a verdict.
      browser: { firefox: { canary: 10, control: 40 }, chrome: { canary: 18, control: 12 } },
    });
    expect(pendingSegments(verdict, 0.05, 30)).toEqual([
      { scope: 'browser=firefox', share: 0.625, canaryInstalls: 10 },
    ]);
  });
});
