import type { KeySet, SignedKeySet } from './keyset.ts';
import type { Manifest, ManifestEnvelope } from './manifest.ts';
import type { Release, SignedRelease } from './release.ts';
import { type SigningKeyPair, signEnvelope } from './signature.ts';

/** Signing side of the protocol: used by the CLI (root, publisher) and the server (online key). */
export function signKeySet(keySet: KeySet, rootKeys: SigningKeyPair[]): Promise<SignedKeySet> {
  return signEnvelope(keySet, rootKeys);
}

export function signRelease(release: Release, publisherKeys: SigningKeyPair[]): Promise<SignedRelease> {
  return signEnvelope(release, publisherKeys);
}

export async function signManifest(
  manifest: Manifest,
  onlineKeys: SigningKeyPair[],
  keySet: SignedKeySet,
): Promise<ManifestEnvelope> {
  return { ...(await signEnvelope(manifest, onlineKeys)), keySet };
}
