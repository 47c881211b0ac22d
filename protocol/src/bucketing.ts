import { concatBytes, fromHex, sha256, utf8 } from './bytes.ts';
import { MAX_SHARE_BPS, type ModelEntry, type ReleaseRef } from './manifest.ts';

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

export interface ReleaseChoice {
  /** What the device runs and returns to callers. */
  active: ReleaseRef | null;
  /** A shadow candidate run beside the active one on sampled inputs, never returned to callers. */
  shadow: ReleaseRef | null;
  /** Whether the device is inside the model's rollout. */
  inRollout: boolean;
}

/** Picks what a device runs for one model entry of a verified manifest. */
export async function chooseRelease(entry: ModelEntry, deviceId: string): Promise<ReleaseChoice> {
  const find = (version: string | null | undefined) =>
    entry.releases.find((r) => r.version === version) ?? null;
  const production = find(entry.production);
  const rollout = entry.rollout;
  if (!rollout || rollout.shareBps === 0) return { active: production, shadow: null, inRollout: false };
  const inside = inRollout(await rolloutBucket(rollout.salt, deviceId), rollout.shareBps);
  if (!inside) return { active: production, shadow: null, inRollout: false };
  const candidate = find(rollout.release);
  if (rollout.mode === 'shadow') return { active: production, shadow: candidate, inRollout: true };
  return { active: candidate, shadow: null, inRollout: true };
}
