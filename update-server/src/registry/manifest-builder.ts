import {
  canonicalJson,
  MANIFEST_SCHEMA_VERSION,
  type Manifest,
  type ModelEntry,
  type ReleaseRef,
  releaseDocumentBytes,
  releaseRef,
  type SignedKeySet,
  type SigningKeyPair,
  sha256Hex,
  signManifest,
  utf8,
} from '@edgeship/protocol';
import type { BlobStore, ManifestRecord, Registry } from '../storage/types.ts';

export interface ManifestSigner {
  online: SigningKeyPair;
  keySet: SignedKeySet;
  /** How long a manifest stays valid; a device refuses it after that (TUF: indefinite freeze). */
  ttlMs: number;
}

/**
 * Builds, signs and stores the next manifest version of a channel from the registry's current
 * state. Runs inside the caller's transaction, after `lockChannel`, so concurrent writers (even in
 * other processes) get consecutive versions and the stored bytes match the state they describe.
 */
export async function publishManifest(
  tx: Registry,
  blobs: BlobStore,
  app: string,
  channel: string,
  signer: ManifestSigner,
  now: Date,
): Promise<ManifestRecord> {
  await tx.lockChannel(app, channel);
  const previous = await tx.latestManifest(app, channel);
  const manifest: Manifest = {
    type: 'edgeship/manifest',
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    app,
    channel,
    version: (previous?.version ?? 0) + 1,
    issuedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + signer.ttlMs).toISOString(),
    models: await modelEntries(tx, blobs, app, channel),
  };
  const envelope = await signManifest(manifest, [signer.online], signer.keySet);
  // Canonical bytes: the served document is a pure function of what was signed.
  const body = canonicalJson(envelope);
  const record: ManifestRecord = {
    app,
    channel,
    version: manifest.version,
    body,
    etag: `"${(await sha256Hex(utf8(body))).slice(0, 40)}"`,
    createdAt: manifest.issuedAt,
  };
  await tx.insertManifest(record);
  return record;
}

async function modelEntries(
  tx: Registry,
  blobs: BlobStore,
  app: string,
  channel: string,
): Promise<ModelEntry[]> {
  const entries: ModelEntry[] = [];
  const activeRollouts = await tx.listRollouts({ app, channel, states: ['active'] });
  for (const state of await tx.listChannelModels(app, channel)) {
    const rollout = activeRollouts.find((r) => r.model === state.model) ?? null;
    const versions = new Set<string>();
    if (state.production) versions.add(state.production);
    if (rollout) {
      versions.add(rollout.release);
      // Every arm's release is listed: a device in any arm downloads it by the hash signed here.
      for (const arm of rollout.arms ?? []) versions.add(arm.release);
      if (rollout.control) versions.add(rollout.control);
    }
    if (versions.size === 0) continue;
    const releases: ReleaseRef[] = [];
    for (const version of versions) {
      const record = await tx.getRelease(state.model, version);
      if (!record)
        throw new Error(`channel ${app}/${channel} refers to missing release ${state.model}@${version}`);
      releases.push(await storeReleaseDocument(blobs, record.signed));
    }
    entries.push({
      name: state.model,
      production: state.production,
      rollout: rollout && {
        id: rollout.id,
        release: rollout.release,
        shareBps: rollout.shareBps,
        salt: rollout.salt,
        control: rollout.control,
        mode: rollout.mode,
        // Only when there are some: a manifest without exclusions is the same document as before.
        ...(rollout.excludedSegments?.length ? { excludedSegments: rollout.excludedSegments } : {}),
        // Likewise only for several arms: a one-release rollout is the layout before arms.
        ...(rollout.arms?.length ? { arms: rollout.arms } : {}),
      },
      releases,
    });
  }
  return entries.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The release's document in the blob store under its hash, where `GET /v1/releases/by-hash/:sha256`
 * serves it (already there for releases published since schema 2; put here for older ones). The
 * store is content-addressed and idempotent, so a rolled-back transaction leaves only a harmless
 * immutable blob.
 */
async function storeReleaseDocument(
  blobs: BlobStore,
  signed: Parameters<typeof releaseRef>[0],
): Promise<ReleaseRef> {
  const ref = await releaseRef(signed);
  if ((await blobs.size(ref.sha256)) !== ref.size) await blobs.put(ref.sha256, releaseDocumentBytes(signed));
  return ref;
}

/** Whether a stored manifest has today's layout; an older one is re-signed before it is served. */
export function hasCurrentSchema(record: ManifestRecord): boolean {
  const parsed = JSON.parse(record.body) as { signed?: { schemaVersion?: unknown } };
  return parsed.signed?.schemaVersion === MANIFEST_SCHEMA_VERSION;
}
