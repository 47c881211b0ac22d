import { createHash } from 'node:crypto';
import { MAX_SHARE_BPS } from '@edgeship/protocol';

/**
 * protocol's `rolloutBucket` (SHA-256(salt ‖ device id), first 4 bytes big-endian, mod 10,000)
 * on node:crypto, synchronously: the evidence writer buckets every active record of every batch
 * inside the ingest transaction, and a WebCrypto digest there costs a promise and a thread-pool
 * job each. bucket.test.ts checks that both give the same bucket.
 */
export function rolloutBucketSync(saltHex: string, deviceId: string): number {
  const digest = createHash('sha256').update(Buffer.from(saltHex, 'hex')).update(deviceId, 'utf8').digest();
  return digest.readUInt32BE(0) % MAX_SHARE_BPS;
}
