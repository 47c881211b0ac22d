import { rolloutArm, rolloutArms, rolloutBucket } from '@edgeship/protocol';
import type { RegistryStore } from '../storage/types.ts';
import type { AggregateFilter, TelemetryStore } from './store.ts';

/** Devices whose latest report is on a version older than the one their bucket should run. */
export interface StuckDevices {
  model: string;
  /** What the channel gives devices outside any rollout, and the rollout's candidate if one runs. */
  production: string | null;
  rollout: { release: string; shareBps: number } | null;
  /** Seconds after a release became a device's target before it counts as stuck. */
  graceSec: number;
  /** Devices whose latest report came at least the grace period after their target was set. */
  judged: number;
  stuck: number;
  /** stuck / judged, or null with none judged. */
  share: number | null;
  /** Stuck devices by the version they run. */
  byVersion: Record<string, number>;
}

export const DEFAULT_STUCK_GRACE_SEC = 3600;

/**
 * Per model, devices stuck on an old version: each device's latest report in the range is
 * compared with what its rollout bucket (protocol bucketing, recomputed here) should run, the
 * rollout's release inside a canary and production outside it. A device is judged only when that
 * report came `graceSec` or more after its target was set (the promotion, or the rollout's last
 * change), so devices still within their update checks are not counted. A device in a segment
 * the rollout excludes runs production inside the rollout's buckets: with exclusions, a device
 * there on production is not counted as stuck (the server does not know each device's segment).
 * Older means older by semver; a device ahead of its target (a halted canary it has not left)
 * is not "stuck on an old version" and shows in the versions in use instead.
 */
export async function stuckDevices(
  store: TelemetryStore,
  registry: RegistryStore,
  filter: AggregateFilter,
  graceSec = DEFAULT_STUCK_GRACE_SEC,
): Promise<StuckDevices[]> {
  const latest = await store.latestVersions(filter);
  const byModel = new Map<string, Map<string, { windowStart: number; versions: string[] }>>();
  for (const row of latest) {
    const devices = byModel.get(row.model) ?? new Map();
    byModel.set(row.model, devices);
    const d = devices.get(row.deviceId) ?? { windowStart: row.windowStart, versions: [] };
    d.versions.push(row.version);
    devices.set(row.deviceId, d);
  }
  const out: StuckDevices[] = [];
  for (const [model, devices] of [...byModel].sort(([a], [b]) => a.localeCompare(b))) {
    const state = await registry.getChannelModel(filter.app, filter.channel, model);
    if (!state?.production) continue;
    const [rollout] = await registry.listRollouts({
      app: filter.app,
      channel: filter.channel,
      model,
      states: ['active'],
    });
    const canary = rollout?.mode === 'canary' && rollout.shareBps > 0 ? rollout : undefined;
    const productionDue = Date.parse(state.updatedAt) / 1000 + graceSec;
    const rolloutDue = canary ? Date.parse(canary.updatedAt) / 1000 + graceSec : 0;
    let judged = 0;
    const byVersion: Record<string, number> = {};
    for (const [deviceId, d] of devices) {
      const running = newest(d.versions);
      if (!running) continue;
      // The release its bucket's arm runs (an experiment's arms each have their own).
      const arm = canary ? rolloutArm(rolloutArms(canary), await rolloutBucket(canary.salt, deviceId)) : -1;
      const inside = arm >= 0;
      const target = inside ? rolloutArms(canary!)[arm]!.release : state.production;
      // Reports the window of the report's start: judged once the whole window is past the due time.
      if (d.windowStart < Math.max(productionDue, inside ? rolloutDue : 0)) continue;
      if (inside && canary!.excludedSegments?.length && running === state.production) continue;
      judged += 1;
      if (compareSemver(running, target) < 0) byVersion[running] = (byVersion[running] ?? 0) + 1;
    }
    const stuck = Object.values(byVersion).reduce((a, b) => a + b, 0);
    out.push({
      model,
      production: state.production,
      rollout: canary ? { release: canary.release, shareBps: canary.shareBps } : null,
      graceSec,
      judged,
      stuck,
      share: judged > 0 ? stuck / judged : null,
      byVersion,
    });
  }
  return out;
}

/** The newest of the versions a device ran in its latest window (where it ended up). */
function newest(versions: string[]): string | undefined {
  return [...versions].sort((a, b) => compareSemver(b, a))[0];
}

/** SemVer 2.0.0 precedence (build metadata ignored; a pre-release is older than its release). */
export function compareSemver(a: string, b: string): number {
  const parse = (v: string) => {
    const [core = '', pre] = v.split('+')[0]!.split(/-(.*)/s);
    return { core: core.split('.').map(Number), pre: pre ? pre.split('.') : [] };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) {
    const d = (x.core[i] ?? 0) - (y.core[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (x.pre.length === 0 && y.pre.length === 0) return 0;
  if (x.pre.length === 0) return 1;
  if (y.pre.length === 0) return -1;
  for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i];
    const q = y.pre[i];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn && Number(p) !== Number(q)) return Math.sign(Number(p) - Number(q));
    if (pn !== qn) return pn ? -1 : 1;
    if (p !== q) return p < q ? -1 : 1;
  }
  return 0;
}
