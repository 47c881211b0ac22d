import {
  type ExcludedSegment,
  ExcludedSegmentSchema,
  MAX_EXCLUDED_SEGMENTS,
  SEGMENT_DIMENSIONS,
  type SegmentDimension,
} from '@edgeship/protocol';
import type { CanaryPolicy, CanaryVerdict } from './analysis.ts';
import type { InstallEvidence } from './evidence.ts';

/**
 * Segment exclusion, the channel policy `segmentRegression: 'exclude'`: when a canary regresses
 * on segments alone, those segments leave the rollout (their devices return to production, the
 * manifest names them, signed) and the rest of the fleet goes on, instead of a halt for all.
 *
 * "Alone" is tested, not assumed: the rest of the fleet, without the segment, is judged again by
 * the same analysis (same tests, same family-wise alpha) and must be healthy, with its estimates
 * (not only its tests) inside the margins: a regression everywhere, halted early on few installs,
 * leaves a rest too small to be significant but still visibly worse, and that is no reason to go
 * on. A rest too small for a verdict is no evidence either: halt. Only segments a
 * device can recognise in itself are excluded: never 'other' (a device cannot tell it was merged
 * there) or 'unknown'. A halt on drift (pooled over the fleet) or on the whole fleet with no
 * segment to blame stays a halt.
 */

/** Installs outside the excluded segments (what a rollout that excludes them is judged on). */
export function withoutExcluded(
  rows: InstallEvidence[],
  excluded: readonly ExcludedSegment[] | undefined,
): InstallEvidence[] {
  if (!excluded?.length) return rows;
  return rows.filter((r) => !excluded.some((e) => r.segment?.[e.dimension] === e.value));
}

/** The regressed segments of a verdict a device can recognise in itself, most significant first. */
export function exclusionCandidates(verdict: CanaryVerdict): ExcludedSegment[] {
  const regressed = (verdict.evidence.tests ?? []).filter((t) => t.regressed).sort((a, b) => a.p - b.p);
  const out: ExcludedSegment[] = [];
  for (const test of regressed) {
    const at = test.scope.indexOf('=');
    if (at < 0) continue; // 'all'
    const dimension = test.scope.slice(0, at) as SegmentDimension;
    const value = test.scope.slice(at + 1);
    if (!SEGMENT_DIMENSIONS.includes(dimension)) continue;
    const parsed = ExcludedSegmentSchema.safeParse({ dimension, value });
    if (!parsed.success) continue;
    if (!out.some((s) => s.dimension === dimension && s.value === value)) out.push(parsed.data);
  }
  return out;
}

export interface Exclusion {
  /** The segments to add to the rollout's exclusions. */
  segments: ExcludedSegment[];
  /** The verdict on the rest of the fleet, without every excluded segment. */
  rest: CanaryVerdict;
}

/**
 * Which segments to exclude instead of halting, or null to halt: the single regressed segment
 * (most significant first) whose removal leaves a fleet that does not regress, else all of them
 * together if that does and they fit in the manifest's bound.
 */
export function chooseExclusion(
  rows: InstallEvidence[],
  verdict: CanaryVerdict,
  already: readonly ExcludedSegment[],
  judge: (rows: InstallEvidence[]) => CanaryVerdict,
  policy: Pick<CanaryPolicy, 'errorRateMargin' | 'latencyMarginRatio'>,
): Exclusion | null {
  if (verdict.decision !== 'halt') return null;
  const candidates = exclusionCandidates(verdict).filter(
    (c) => !already.some((a) => a.dimension === c.dimension && a.value === c.value),
  );
  const room = MAX_EXCLUDED_SEGMENTS - already.length;
  if (candidates.length === 0 || room <= 0) return null;
  const attempts = candidates.map((c) => [c]);
  if (candidates.length > 1 && candidates.length <= room) attempts.push(candidates);
  for (const segments of attempts) {
    const rest = judge(withoutExcluded(rows, [...already, ...segments]));
    if (isClean(rest, policy)) return { segments, rest };
  }
  return null;
}

/** Healthy, and the whole rest's estimates inside the margins (errors absolute, latency as a ratio). */
function isClean(
  rest: CanaryVerdict,
  policy: Pick<CanaryPolicy, 'errorRateMargin' | 'latencyMarginRatio'>,
): boolean {
  if (rest.decision !== 'healthy') return false;
  const whole = (rest.evidence.tests ?? []).filter((t) => t.scope === 'all');
  if (whole.length === 0) return false;
  return whole.every((t) =>
    t.criterion === 'errors'
      ? t.canary - t.control <= policy.errorRateMargin
      : t.canary - t.control <= Math.log(policy.latencyMarginRatio),
  );
}
