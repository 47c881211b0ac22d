import { GATE_VS_PRODUCTION, type ReleaseGates } from '@edgeship/protocol';
import { PolicyRefusedError } from '../http/api-errors.ts';
import type { ChannelPolicy, Registry, ReleaseRecord } from '../storage/types.ts';

/** A channel with no policy of its own: anyone with the role promotes, as before policies. */
export const NO_POLICY: ChannelPolicy = {
  requireApproval: false,
  approverNotPublisher: false,
  requireGates: [],
};

/** The channel's policy, with fields added since it was stored filled with their defaults. */
export async function channelPolicy(
  tx: Registry,
  ref: { app: string; channel: string },
): Promise<ChannelPolicy> {
  const stored = (await tx.getChannelPolicy(ref.app, ref.channel))?.policy;
  return { ...NO_POLICY, ...stored };
}

/**
 * Refuses (E_POLICY, audited by the caller's guard) to give `release` more devices on app/channel
 * (promote it, start or widen its rollout) when the channel's policy requires gates its signed
 * release does not record. The gate against production must have run against this channel and
 * against what it serves now: a comparison with a release since replaced is stale.
 */
export async function requireGates(
  tx: Registry,
  ref: { app: string; channel: string; model: string },
  release: ReleaseRecord,
  attempted: string,
): Promise<void> {
  const { requireGates: required = [] } = await channelPolicy(tx, ref);
  if (required.length === 0) return;
  const gates = release.signed.signed.gates;
  const problem = gateProblem(
    required,
    gates,
    ref,
    (await tx.getChannelModel(ref.app, ref.channel, ref.model))?.production ?? null,
  );
  if (problem === null) return;
  const id = `${release.model}@${release.version}`;
  throw new PolicyRefusedError(
    `${ref.app}/${ref.channel} requires gates ${required.join(', ')}: ${id} ${problem}`,
    {
      attempted,
      version: release.version,
      requireGates: required,
      gatesRun: gates?.results.map((g) => g.name) ?? [],
    },
  );
}

function gateProblem(
  required: readonly string[],
  gates: ReleaseGates | undefined,
  ref: { app: string; channel: string },
  production: string | null,
): string | null {
  if (!gates) return 'records no gates';
  const ran = new Set(gates.results.map((g) => g.name));
  const missing = required.filter((name) => !ran.has(name));
  if (missing.length > 0) return `lacks ${missing.join(', ')}`;
  if (!required.includes(GATE_VS_PRODUCTION)) return null;
  const against = gates.against;
  if (!against || against.app !== ref.app || against.channel !== ref.channel) {
    return `was not gated against ${ref.app}/${ref.channel}'s production`;
  }
  if (against.version !== production) {
    return `was gated against production ${against.version ?? '(none)'}, the channel serves ${production ?? 'none'} now`;
  }
  return null;
}
