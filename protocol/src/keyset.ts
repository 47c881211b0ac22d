import * as z from 'zod/mini';
import { ExpiredError, MalformedError, RollbackError, SignatureError } from './errors.ts';
import { IsoTime, PublicKeyEntrySchema, signedSchema } from './schema-primitives.ts';
import { checkKeyId, distinctKeys, type PublicKeyEntry, type Signed, verifyThreshold } from './signature.ts';

const DAY_SECONDS = 86_400;
/** What a key set that declares no `maxManifestLifetimeSeconds` allows (the server signs for 7 days). */
export const DEFAULT_MAX_MANIFEST_LIFETIME_SECONDS = 30 * DAY_SECONDS;

/**
 * The root-signed key set: which online keys may sign manifests and which publisher keys may
 * sign releases. Rotating an online or publisher key is a new key set version; the root keys
 * themselves are pinned in the app.
 */
export const KeySetSchema = z.strictObject({
  type: z.literal('edgeship/keyset'),
  version: z.int().check(z.minimum(1), z.maximum(Number.MAX_SAFE_INTEGER)),
  issuedAt: IsoTime,
  expiresAt: IsoTime,
  threshold: z.strictObject({
    root: z.int().check(z.minimum(1), z.maximum(8)),
    manifest: z.int().check(z.minimum(1), z.maximum(8)),
    release: z.int().check(z.minimum(1), z.maximum(8)),
  }),
  onlineKeys: z.array(PublicKeyEntrySchema).check(z.minLength(1), z.maxLength(16)),
  publisherKeys: z.array(PublicKeyEntrySchema).check(z.minLength(1), z.maxLength(64)),
  /**
   * The longest a manifest may be valid (expiresAt − issuedAt): a stolen online key cannot sign
   * one that never expires. Absent in key sets signed before it existed: the default applies.
   */
  maxManifestLifetimeSeconds: z.optional(z.int().check(z.minimum(60), z.maximum(366 * DAY_SECONDS))),
});
export type KeySet = z.infer<typeof KeySetSchema>;
export const SignedKeySetSchema = signedSchema(KeySetSchema);
export type SignedKeySet = Signed<KeySet>;

/** What a device pins: the root public keys and how many of them must sign a key set. */
export interface TrustedRoot {
  keys: PublicKeyEntry[];
  threshold: number;
}

/** What `GET /v1/root` serves and an app embeds: the root's public keys and its threshold. */
export const TrustedRootSchema = z.strictObject({
  keys: z.array(PublicKeyEntrySchema).check(z.minLength(1), z.maxLength(16)),
  threshold: z.int().check(z.minimum(1), z.maximum(8)),
});

export interface KeySetCheck {
  root: TrustedRoot;
  now: Date;
  /** Version of the newest key set accepted before; a lower one is a rollback. */
  minVersion?: number;
}

/**
 * Verifies a key set against the pinned root, in a fixed order: root signatures, key ids,
 * thresholds, rollback, expiry. The key set plays TUF's root metadata: it names the keys and
 * thresholds of the other roles (online = timestamp/snapshot/targets, publisher = targets).
 */
export async function verifyKeySet(envelope: SignedKeySet, check: KeySetCheck): Promise<KeySet> {
  // Key substitution: a pinned entry whose id is not its key's hash is a misconfigured app.
  for (const entry of check.root.keys) await checkKeyId(entry);
  // TUF 5.3.4 (arbitrary software): signed by a threshold of the trusted (pinned) root keys, and
  // by the threshold the new key set itself declares; each distinct key counts once.
  const signers = await verifyThreshold(envelope, check.root.keys, check.root.threshold, 'key set');
  const keySet = envelope.signed;
  if (signers.length < keySet.threshold.root) {
    throw new SignatureError(
      `key set has ${signers.length} root signature(s), its own threshold is ${keySet.threshold.root}`,
    );
  }
  // Key substitution: every id must be the hash of the key it names.
  for (const entry of [...keySet.onlineKeys, ...keySet.publisherKeys]) await checkKeyId(entry);
  // A threshold above the number of distinct keys could never be met: every device would freeze.
  if (distinctKeys(keySet.onlineKeys) < keySet.threshold.manifest) {
    throw new MalformedError('key set: manifest threshold exceeds its distinct online keys');
  }
  if (distinctKeys(keySet.publisherKeys) < keySet.threshold.release) {
    throw new MalformedError('key set: release threshold exceeds its distinct publisher keys');
  }
  // TUF 5.3.5 (rollback): an old key set could bring back a revoked key. Key sets are not chained
  // N → N+1 as TUF roots are: the root keys are pinned in the app and never rotate through them.
  if (check.minVersion !== undefined && keySet.version < check.minVersion) {
    throw new RollbackError(`key set version ${keySet.version} is older than ${check.minVersion}`);
  }
  // TUF 5.3.10 (freeze): an expired key set no longer vouches for its keys.
  if (Date.parse(keySet.expiresAt) <= check.now.getTime()) {
    throw new ExpiredError(`key set expired at ${keySet.expiresAt}`);
  }
  if (Date.parse(keySet.issuedAt) > Date.parse(keySet.expiresAt)) {
    throw new MalformedError('key set expires before it is issued');
  }
  return keySet;
}

export function maxManifestLifetimeMs(keySet: KeySet): number {
  return (keySet.maxManifestLifetimeSeconds ?? DEFAULT_MAX_MANIFEST_LIFETIME_SECONDS) * 1000;
}
