import { concatBytes, fromHex, sha256, utf8 } from './bytes.ts';
import {
  MAX_SHARE_BPS,
  type ModelEntry,
  type ReleaseRef,
  type Rollout,
  type RolloutArm,
} from './manifest.ts';
import { type ExcludedSegment, excludedSegmentOf, type SegmentValues } from './segments.ts';

/**
 * A device's bucket in 0..9999 for one rollout: SHA-256(salt ‖ device id), first 4 bytes as a
 * big-endian integer, modulo 10,000 (bias below 2.4e-6). A pure function of its inputs, so the
 * server, the fleet simulator and the device always agree. A device inside at share p is inside
 * at every share above p, because membership is `bucket < share`.
 */
export async function rolloutBucket(saltHex: string, deviceId: string): Promise<number> {
  const digest = await sha256(concatBytes(fromHex(saltHex), utf8(deviceId)));
  const view = new DataView(digest.buffer, digest.byteOffset, 4);
  return view.getUint32(0, false) % MAX_SHARE_BPS;
}

export function inRollout(bucket: number, shareBps: number): boolean {
  return bucket < shareBps;
}

/** A rollout's treatment arms: its `arms`, or the one arm of a rollout without them. */
export function rolloutArms(rollout: Pick<Rollout, 'release' | 'shareBps' | 'arms'>): RolloutArm[] {
  return rollout.arms ?? [{ release: rollout.release, shareBps: rollout.shareBps }];
}

/**
 * The arm a bucket falls in, by cumulative shares: arm i takes [Σ shares before i, that + its
 * share), so the arms' ranges are disjoint, cover exactly `shareBps` buckets from 0, and a
 * one-arm rollout is `bucket < shareBps` as before. -1: outside every arm.
 */
export function rolloutArm(arms: readonly RolloutArm[], bucket: number): number {
  let from = 0;
  for (const [i, arm] of arms.entries()) {
    if (bucket >= from && bucket < from + arm.shareBps) return i;
    from += arm.shareBps;
  }
  return -1;
}

export interface ReleaseChoice {
  /** What the device runs and returns to callers. */
  active: ReleaseRef | null;
  /** A shadow candidate run beside the active one on sampled inputs, never returned to callers. */
  shadow: ReleaseRef | null;
  /** Whether the device is inside the model's rollout. */
  inRollout: boolean;
  /** Inside: which of the rollout's treatment arms (0 for a rollout without `arms`). */
  arm?: number;
  /** The excluded segment that kept a device whose bucket is inside out of the rollout. */
  excludedBy?: ExcludedSegment;
}

/**
 * Picks what a device runs for one model entry of a verified manifest. `segment` is what the
 * device knows of its own segment values (deviceSegmentValues): a device in a segment the
 * rollout excludes runs production, as a device outside the rollout does. A device that passes
 * no segment is judged by its bucket alone.
 */
export async function chooseRelease(
  entry: ModelEntry,
  deviceId: string,
  segment?: Partial<SegmentValues>,
): Promise<ReleaseChoice> {
  const find = (version: string | null | undefined) =>
    entry.releases.find((r) => r.version === version) ?? null;
  const production = find(entry.production);
  const rollout = entry.rollout;
  if (!rollout || rollout.shareBps === 0) return { active: production, shadow: null, inRollout: false };
  // The install is the unit: its bucket (salt and id alone) decides its arm, at every check.
  const arms = rolloutArms(rollout);
  const arm = rolloutArm(arms, await rolloutBucket(rollout.salt, deviceId));
  if (arm < 0) return { active: production, shadow: null, inRollout: false };
  const excludedBy = excludedSegmentOf(rollout.excludedSegments, segment);
  if (excludedBy) return { active: production, shadow: null, inRollout: false, excludedBy };
  const candidate = find(arms[arm]!.release);
  if (rollout.mode === 'shadow') return { active: production, shadow: candidate, inRollout: true, arm };
  return { active: candidate, shadow: null, inRollout: true, arm };
}
