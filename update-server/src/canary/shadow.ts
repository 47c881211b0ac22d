import { type Histogram, histogramCount, histogramQuantile } from '@edgeship/protocol';
import type { RolloutRecord } from '../storage/types.ts';
import { emptyValues, mergeValues } from '../telemetry/aggregate.ts';
import type { TelemetryService } from '../telemetry/service.ts';

/**
 * Whether a shadow candidate is ready for a canary. In shadow mode the same devices run both the
 * active release and the candidate on the same inputs, so agreement and the latency ratio compare
 * like with like (device speed cancels): thresholds on them, once enough devices have compared
 * enough inputs, are the verdict.
 */
export interface ShadowPolicy {
  /** No verdict before this many compared inputs... */
  minCompared: number;
  /** ...from this many devices. */
  minDevices: number;
  /** Share of inputs where both releases fell on the same side of the decision threshold. */
  minAgreement: number;
  /** The candidate's p95 latency may exceed the active release's by at most this factor. */
  maxLatencyRatio: number;
}

export const DEFAULT_SHADOW_POLICY: ShadowPolicy = {
  minCompared: 1000,
  minDevices: 30,
  minAgreement: 0.98,
  maxLatencyRatio: 1.25,
};

export interface ShadowEvidence {
  candidate: string;
  against: string;
  devices: number;
  compared: number;
  agreements: number;
  /** The candidate's inference latency (shadow records) and the active release's, same window. */
  candidateLatencyMs: Histogram;
  activeLatencyMs: Histogram;
}

export interface ShadowVerdict {
  decision: 'ready' | 'not-ready' | 'insufficient-data';
  reasons: string[];
  evidence: {
    candidate: string;
    against: string;
    devices: number;
    compared: number;
    agreement: number | null;
    candidateP95Ms: number | null;
    activeP95Ms: number | null;
    latencyRatio: number | null;
  };
}

export function shadowVerdict(
  e: ShadowEvidence,
  policy: ShadowPolicy = DEFAULT_SHADOW_POLICY,
): ShadowVerdict {
  const p95 = (h: Histogram) => (histogramCount(h) === 0 ? null : histogramQuantile(h, 0.95));
  const candidateP95Ms = p95(e.candidateLatencyMs);
  const activeP95Ms = p95(e.activeLatencyMs);
  const agreement = e.compared > 0 ? e.agreements / e.compared : null;
  const latencyRatio = candidateP95Ms !== null && activeP95Ms ? candidateP95Ms / activeP95Ms : null;
  const evidence = {
    candidate: e.candidate,
    against: e.against,
    devices: e.devices,
    compared: e.compared,
    agreement,
    candidateP95Ms,
    activeP95Ms,
    latencyRatio,
  };
  if (e.compared < policy.minCompared || e.devices < policy.minDevices) {
    return {
      decision: 'insufficient-data',
      reasons: [
        `${e.compared} inputs compared on ${e.devices} devices; a verdict needs ${policy.minCompared} on ${policy.minDevices}`,
      ],
      evidence,
    };
  }
  const reasons: string[] = [];
  if (agreement !== null && agreement < policy.minAgreement) {
    reasons.push(
      `agreement ${(agreement * 100).toFixed(2)}% with ${e.against}, below ${(policy.minAgreement * 100).toFixed(2)}%`,
    );
  }
  if (latencyRatio === null) reasons.push('no latency measured on both releases');
  else if (latencyRatio > policy.maxLatencyRatio) {
    reasons.push(
      `p95 latency ${candidateP95Ms!.toFixed(2)} ms vs ${activeP95Ms!.toFixed(2)} ms on ${e.against}, beyond ${policy.maxLatencyRatio}x`,
    );
  }
  if (reasons.length > 0) return { decision: 'not-ready', reasons, evidence };
  return {
    decision: 'ready',
    reasons: [
      `agreement ${(agreement! * 100).toFixed(2)}% and p95 latency ${latencyRatio!.toFixed(2)}x of ${e.against}: ready for a canary`,
    ],
    evidence,
  };
}

/** A shadow rollout's evidence since it started, from the per-release aggregates. */
export async function shadowEvidence(
  telemetry: TelemetryService,
  rollout: RolloutRecord,
): Promise<ShadowEvidence> {
  // From the window the rollout started in (aggregates are kept per window).
  const window = telemetry.windowSec;
  const since = Math.floor(Date.parse(rollout.createdAt) / 1000 / window) * window;
  const filter = { app: rollout.app, channel: rollout.channel, model: rollout.model, since };
  const [rows, devices] = await Promise.all([
    telemetry.store.aggregates(filter),
    telemetry.store.deviceCounts({ ...filter, role: 'shadow', versions: [rollout.release] }),
  ]);
  const candidate = emptyValues();
  for (const [k, v] of rows)
    if (k.role === 'shadow' && k.version === rollout.release) mergeValues(candidate, v);
  // The release it was compared against the most (the production release, unless it changed).
  const against =
    Object.entries(candidate.shadow).sort(([, a], [, b]) => b.compared - a.compared)[0]?.[0] ??
    rollout.control ??
    '';
  const active = emptyValues();
  for (const [k, v] of rows) if (k.role === 'active' && k.version === against) mergeValues(active, v);
  const s = candidate.shadow[against];
  return {
    candidate: rollout.release,
    against,
    devices: devices
      .filter((d) => d.bucket === null && d.role === 'shadow' && d.version === rollout.release)
      .reduce((n, d) => n + d.devices, 0),
    compared: s?.compared ?? 0,
    agreements: s?.agreements ?? 0,
    candidateLatencyMs: candidate.latency,
    activeLatencyMs: active.latency,
  };
}
