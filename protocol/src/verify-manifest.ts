import { sha256Hex, utf8 } from './bytes.ts';
import { canonicalBytes } from './canonical-json.ts';
import {
  ExpiredError,
  LifetimeError,
  MalformedError,
  RollbackError,
  VersionConflictError,
  WrongTargetError,
} from './errors.ts';
import { type KeySet, maxManifestLifetimeMs, type TrustedRoot, verifyKeySet } from './keyset.ts';
import { type Manifest, ManifestEnvelopeSchema, type ModelEntry } from './manifest.ts';
import { parseJson } from './parse.ts';
import { MAX_MANIFEST_BYTES } from './schema-primitives.ts';
import { verifyThreshold } from './signature.ts';

/**
 * How far a manifest's `issuedAt` may be ahead of the device's clock. Device clocks drift; an
 * hour of slack costs an attacker at most an hour of extra lifetime.
 */
export const MAX_CLOCK_SKEW_MS = 3_600_000;

/** What a device remembers of the newest manifest it accepted (TUF 5.4.5: persist it). */
export interface TrustedManifest {
  version: number;
  /** SHA-256 of the canonical signed manifest: that version must always be that document. */
  digest: string;
  /** The online public keys whose signatures counted for it. */
  signers: string[];
}

export interface ManifestCheck {
  root: TrustedRoot;
  app: string;
  channel: string;
  /** The reference time, fixed once per update so every check agrees on "now" (TUF 5.1). */
  now: Date;
  /**
   * The newest manifest accepted before. Its version is the rollback floor, and that version must
   * be the same document, unless the key set no longer trusts the keys that signed it.
   */
  trusted?: TrustedManifest | null;
  /** A plain version floor, whatever the keys (callers that keep no signers). */
  minVersion?: number;
  /** The newest key set version accepted before. */
  minKeySetVersion?: number;
  /** Allowed lead of `issuedAt` over `now`; MAX_CLOCK_SKEW_MS unless set. */
  clockSkewMs?: number;
}

export interface VerifiedManifest {
  manifest: Manifest;
  keySet: KeySet;
  /** What to persist once the caller commits to this manifest. */
  trusted: TrustedManifest;
}

/**
 * Raw bytes in, a verified manifest out. The order follows TUF's detailed client workflow
 * (spec 1.0.34, section 5; the manifest plays timestamp, snapshot and targets at once, the key
 * set plays root): trust the key set through the pinned root, recover from a fast-forward if its
 * online keys changed, then the manifest's signature, then what it says (target, version,
 * expiry, lifetime). Releases are named by hash; their publisher signatures are checked when
 * their documents are fetched (verify-release.ts). Persisting is the caller's job, after every
 * check passed.
 */
export async function verifyManifest(
  bytes: Uint8Array | string,
  check: ManifestCheck,
): Promise<VerifiedManifest> {
  // TUF 5.4.1 (endless data): "download ... up to X number of bytes". The bound is in bytes (a
  // string's length counts UTF-16 units, and "é" is one unit but two bytes), checked before
  // anything is decoded.
  const size =
    typeof bytes !== 'string'
      ? bytes.length
      : bytes.length > MAX_MANIFEST_BYTES
        ? bytes.length
        : utf8(bytes).length;
  if (size > MAX_MANIFEST_BYTES) {
    throw new MalformedError(`manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
  }
  const text = typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  const envelope = parseJson(ManifestEnvelopeSchema, text, 'manifest');

  // TUF 5.3 (arbitrary installation, rollback, freeze): the key set must chain to the pinned root.
  const keySet = await verifyKeySet(envelope.keySet, {
    root: check.root,
    now: check.now,
    ...(check.minKeySetVersion === undefined ? {} : { minVersion: check.minKeySetVersion }),
  });
  // TUF 5.3.11 (fast-forward recovery): "If the timestamp and / or snapshot keys have been
  // rotated, then delete the trusted timestamp and snapshot metadata files." A manifest whose
  // signers the key set no longer trusts stops counting, so a version pushed to 2^53-1 with a
  // stolen online key is forgotten once the root rotates that key out.
  const trusted = stillTrusted(check.trusted ?? null, keySet);
  // TUF 5.4.2 (arbitrary installation): a threshold of distinct online keys of that key set.
  const signers = await verifyThreshold(envelope, keySet.onlineKeys, keySet.threshold.manifest, 'manifest');
  const manifest = envelope.signed;

  // Wrong software: a valid manifest for another app or channel.
  if (manifest.app !== check.app || manifest.channel !== check.channel) {
    throw new WrongTargetError(
      `manifest is for ${manifest.app}/${manifest.channel}, expected ${check.app}/${check.channel}`,
    );
  }
  // TUF 5.4.3.1 (rollback): never accept a manifest older than the newest accepted one.
  const floor = Math.max(check.minVersion ?? 0, trusted?.version ?? 0);
  if (manifest.version < floor) {
    throw new RollbackError(`manifest version ${manifest.version} is older than ${floor}`);
  }
  // TUF 5.4.3.1 (mix-and-match): at an equal version "there shouldn't be any changes in the
  // content": two documents under one version mean a forked or equivocating signer.
  const digest = await sha256Hex(canonicalBytes(manifest));
  if (trusted && manifest.version === trusted.version && digest !== trusted.digest) {
    throw new VersionConflictError(
      `manifest version ${manifest.version} differs from the one accepted at that version`,
    );
  }
  // TUF 5.4.4 (indefinite freeze): a replayed old manifest eventually expires.
  if (Date.parse(manifest.expiresAt) <= check.now.getTime()) {
    throw new ExpiredError(`manifest expired at ${manifest.expiresAt}`);
  }
  // Indefinite freeze, bounded: TUF leaves expiry to the signer; here the root caps it, so a
  // stolen online key cannot sign "expires 9999" (nor dodge the cap with a future issuedAt).
  checkLifetime(manifest, maxManifestLifetimeMs(keySet), check);
  // Each release is named by its document's hash; the document's publisher signature is checked
  // when it is fetched, before its chunks are (verifyReleaseDocument, TUF 5.6).
  for (const entry of manifest.models) checkModelEntry(entry);
  return { manifest, keySet, trusted: { version: manifest.version, digest, signers } };
}

/** The trusted manifest, or null once the key set no longer trusts a threshold of its signers. */
function stillTrusted(trusted: TrustedManifest | null, keySet: KeySet): TrustedManifest | null {
  if (!trusted) return null;
  const online = new Set(keySet.onlineKeys.map((k) => k.publicKey));
  const kept = new Set(trusted.signers.filter((key) => online.has(key))).size;
  return kept >= keySet.threshold.manifest ? trusted : null;
}

function checkLifetime(manifest: Manifest, maxMs: number, check: ManifestCheck): void {
  const issued = Date.parse(manifest.issuedAt);
  const expires = Date.parse(manifest.expiresAt);
  const skew = check.clockSkewMs ?? MAX_CLOCK_SKEW_MS;
  if (issued > check.now.getTime() + skew) {
    throw new LifetimeError(`manifest is issued at ${manifest.issuedAt}, in the future`);
  }
  if (expires <= issued) {
    throw new MalformedError('manifest expires before it is issued');
  }
  if (expires - issued > maxMs) {
    throw new LifetimeError(
      `manifest is valid for ${Math.round((expires - issued) / 1000)} s, its key set allows ${maxMs / 1000} s`,
    );
  }
}

/** Each release listed once, and every version the entry points at listed. */
function checkModelEntry(entry: ModelEntry): void {
  const versions = new Set<string>();
  for (const ref of entry.releases) {
    if (versions.has(ref.version)) {
      throw new MalformedError(`release ${entry.name}@${ref.version} is listed twice`);
    }
    versions.add(ref.version);
  }
  const referenced = [
    entry.production,
    entry.rollout?.release,
    entry.rollout?.control,
    ...(entry.rollout?.arms ?? []).map((a) => a.release),
  ];
  for (const version of referenced) {
    if (version && !versions.has(version)) {
      throw new MalformedError(`model ${entry.name} refers to ${version}, which it does not list`);
    }
  }
}
