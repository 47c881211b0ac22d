import {
  parseValue,
  type Release,
  SignedReleaseSchema,
  type TrustedRoot,
  verifyKeySet,
  verifyRelease,
  WrongTargetError,
} from '@edgeship/protocol';
import { AdminApiError, type AdminClient } from '@edgeship/update-server/admin-client';

/** A channel's production release, as its publisher signed it. */
export interface ProductionRelease {
  version: string;
  release: Release;
  files: Map<string, Uint8Array>;
}

/**
 * The production release of `model` on app/channel, downloaded through the admin client and
 * checked before anything runs it: its publisher signature against the server's key set (itself
 * verified against `root` when the pinned root keys are given), that it is the release the channel
 * names, and every chunk and file against the hashes it signs. Null when the channel has none.
 */
export async function fetchProduction(
  client: AdminClient,
  ref: { app: string; channel: string; model: string },
  root?: TrustedRoot,
): Promise<ProductionRelease | null> {
  let state: Awaited<ReturnType<AdminClient['channel']>>;
  try {
    state = await client.channel(ref.app, ref.channel);
  } catch (error) {
    if (error instanceof AdminApiError && error.status === 404) return null;
    throw error;
  }
  const version = state.models.find((m) => m.model === ref.model)?.production ?? null;
  if (version === null) return null;
  const record = await client.getRelease(ref.model, version);
  const what = `production release ${ref.model}@${version}`;
  const signed = parseValue(SignedReleaseSchema, record.signed, what);
  const envelope = await client.keySet();
  const keySet = root ? await verifyKeySet(envelope, { root, now: new Date() }) : envelope.signed;
  const release = await verifyRelease(signed, keySet);
  if (release.model !== ref.model || release.version !== version) {
    throw new WrongTargetError(`${what}: the server answered ${release.model}@${release.version}`);
  }
  return { version, release, files: await client.downloadRelease(signed) };
}
