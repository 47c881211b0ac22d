import { utf8 } from './bytes.ts';
import {
  EdgeshipError,
  ExpiredError,
  MalformedError,
  RollbackError,
  SignatureError,
  WrongTargetError,
} from './errors.ts';
import { type KeySet, type TrustedRoot, verifyKeySet } from './keyset.ts';
import { type Manifest, ManifestEnvelopeSchema, type ModelEntry } from './manifest.ts';
import { parseJson } from './parse.ts';
import { type Release, releaseId, type SignedRelease } from './release.ts';
import { MAX_MANIFEST_BYTES } from './schema-primitives.ts';
import { verifyThreshold } from './signature.ts';

export interface ManifestCheck {
  root: TrustedRoot;
  app: string;
  channel: string;
  /** The reference time, fixed once per update so every check agrees on "now". */
  now: Date;
  /** The newest manifest version accepted before. */
  minVersion?: number;
  /** The newest key set version accepted before. */
  minKeySetVersion?: number;
}

export interface VerifiedManifest {
  manifest: Manifest;
  keySet: KeySet;
}

/**
 * Raw bytes in, a verified manifest out. The order follows TUF's client workflow: trust the
 * key set through the pinned root, then the manifest's signature, then what it says (target,
 * version, expiry), then each release's publisher signature.
 */
export async function verifyManifest(
  bytes: Uint8Array | string,
  check: ManifestCheck,
): Promise<VerifiedManifest> {
  // Endless data: a manifest has a hard size bound, in bytes (a string's length counts UTF-16
  // units, and "é" is one unit but two bytes), checked before anything is decoded.
  const size =
    typeof bytes !== 'string'
      ? bytes.length
      : bytes.length > MAX_MANIFEST_BYTES
        ? bytes.length
        : utf8(bytes).length;
  if (size > MAX_MANIFEST_BYTES) {
    throw new MalformedError('E_MALFORMED', `manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
  }
  const text = typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  const envelope = parseJson(ManifestEnvelopeSchema, text, 'manifest');

  // Arbitrary installation: the key set must chain to a pinned root key.
  const keySet = await verifyKeySet(envelope.keySet, {
    root: check.root,
    now: check.now,
    ...(check.minKeySetVersion === undefined ? {} : { minVersion: check.minKeySetVersion }),
  });
  // Arbitrary installation: the manifest must be signed by an online key of that key set.
  await verifyThreshold(envelope, keySet.onlineKeys, keySet.threshold.manifest, 'manifest');
  const manifest = envelope.signed;

  // Wrong software: a valid manifest for another app or channel.
  if (manifest.app !== check.app || manifest.channel !== check.channel) {
    throw new WrongTargetError(
      'E_WRONG_TARGET',
      `manifest is for ${manifest.app}/${manifest.channel}, expected ${check.app}/${check.channel}`,
    );
  }
  // Rollback: never accept a manifest older than the newest accepted one.
  if (check.minVersion !== undefined && manifest.version < check.minVersion) {
    throw new RollbackError(
      'E_ROLLBACK',
      `manifest version ${manifest.version} is older than ${check.minVersion}`,
    );
  }
  // Indefinite freeze: a replayed old manifest eventually expires.
  if (Date.parse(manifest.expiresAt) <= check.now.getTime()) {
    throw new ExpiredError('E_EXPIRED', `manifest expired at ${manifest.expiresAt}`);
  }
  for (const entry of manifest.models) await verifyModelEntry(entry, keySet);
  return { manifest, keySet };
}

async function verifyModelEntry(entry: ModelEntry, keySet: KeySet): Promise<void> {
  const versions = new Set<string>();
  for (const signed of entry.releases) {
    await verifyRelease(signed, keySet);
    if (signed.signed.model !== entry.name) {
      throw new MalformedError(
        'E_MALFORMED',
        `release ${releaseId(signed.signed)} is listed under ${entry.name}`,
      );
    }
    if (versions.has(signed.signed.version)) {
      throw new MalformedError('E_MALFORMED', `release ${releaseId(signed.signed)} is listed twice`);
    }
    versions.add(signed.signed.version);
  }
  const referenced = [entry.production, entry.rollout?.release, entry.rollout?.control];
  for (const version of referenced) {
    if (version && !versions.has(version)) {
      throw new MalformedError(
        'E_MALFORMED',
        `model ${entry.name} refers to ${version}, which it does not list`,
      );
    }
  }
}

/**
 * Compromised server key: the online key can offer releases but not forge them, because each
 * release carries the signature of a publisher key that the root vouched for.
 */
export async function verifyRelease(signed: SignedRelease, keySet: KeySet): Promise<Release> {
  try {
    await verifyThreshold(
      signed,
      keySet.publisherKeys,
      keySet.threshold.release,
      `release ${releaseId(signed.signed)}`,
    );
  } catch (error) {
    if (error instanceof EdgeshipError)
      throw new SignatureError('E_PUBLISHER_SIGNATURE', error.message, { cause: error });
    throw error;
  }
  return signed.signed;
}
