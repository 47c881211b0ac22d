import { createHash } from 'node:crypto';
import { HashMismatchError, MalformedError } from '@edgeship/protocol';

// Exactly the protocol's Sha256Hex: the name becomes a file path, so nothing else may pass
// (no '..', no '/', no upper case that would alias a lower-case file on some file systems).
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Throws E_MALFORMED unless `name` is a lowercase hex SHA-256. */
export function assertChunkName(name: string): void {
  if (typeof name !== 'string' || !SHA256_HEX.test(name)) {
    throw new MalformedError(`not a lowercase hex SHA-256: ${JSON.stringify(name).slice(0, 80)}`);
  }
}

/** Throws E_HASH unless `bytes` hash to `sha256` (server-side, so node:crypto, not Web Crypto). */
export function assertChunkHash(sha256: string, bytes: Uint8Array): void {
  assertChunkName(sha256);
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== sha256) {
    throw new HashMismatchError(`chunk bytes hash to ${actual}, not ${sha256}`);
  }
}
