import * as z from 'zod';
import { ExpiredError, MalformedError, RollbackError } from './errors.ts';
import { IsoTime, PublicKeyEntrySchema, signedSchema } from './schema-primitives.ts';
import { checkKeyId, type PublicKeyEntry, type Signed, verifyThreshold } from './signature.ts';

/**
 * The root-signed key set: which online keys may sign manifests and which publisher keys may
 * sign releases. Rotating an online or publisher key is a new key set version; the root keys
 * themselves are pinned in the app.
 */
export const KeySetSchema = z.strictObject({
  type: z.literal('edgeship/keyset'),
  version: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
  issuedAt: IsoTime,
  expiresAt: IsoTime,
  threshold: z.strictObject({
    root: z.int().min(1).max(8),
    manifest: z.int().min(1).max(8),
    release: z.int().min(1).max(8),
  }),
  onlineKeys: z.array(PublicKeyEntrySchema).min(1).max(16),
  publisherKeys: z.array(PublicKeyEntrySchema).min(1).max(64),
});
export type KeySet = z.infer<typeof KeySetSchema>;
export const SignedKeySetSchema = signedSchema(KeySetSchema);
export type SignedKeySet = Signed<KeySet>;

/** What a device pins: the root public keys and how many of them must sign a key set. */
export interface TrustedRoot {
  keys: PublicKeyEntry[];
  threshold: number;
}

export interface KeySetCheck {
  root: TrustedRoot;
  now: Date;
  /** Version of the newest key set accepted before; a lower one is a rollback. */
  minVersion?: number;
}

/**
 * Verifies a key set against the pinned root, in a fixed order: root signatures, key ids,
 * rollback, expiry.
 */
export async function verifyKeySet(envelope: SignedKeySet, check: KeySetCheck): Promise<KeySet> {
  // Arbitrary installation: only the pinned root keys can name signing keys.
  await verifyThreshold(envelope, check.root.keys, check.root.threshold, 'key set');
  const keySet = envelope.signed;
  // Key substitution: every id must be the hash of the key it names.
  for (const entry of [...keySet.onlineKeys, ...keySet.publisherKeys]) await checkKeyId(entry);
  // Rollback: an old key set could bring back a revoked key.
  if (check.minVersion !== undefined && keySet.version < check.minVersion) {
    throw new RollbackError(
      'E_ROLLBACK',
      `key set version ${keySet.version} is older than ${check.minVersion}`,
    );
  }
  // Freeze: an expired key set no longer vouches for its keys.
  if (Date.parse(keySet.expiresAt) <= check.now.getTime()) {
    throw new ExpiredError('E_EXPIRED', `key set expired at ${keySet.expiresAt}`);
  }
  if (Date.parse(keySet.issuedAt) > Date.parse(keySet.expiresAt)) {
    throw new MalformedError('E_MALFORMED', 'key set expires before it is issued');
  }
  return keySet;
}
