import { createHash } from 'node:crypto';
import { MAX_SHARE_BPS } from '@edgeship/protocol';

/**
 * protocol's `rolloutBucket` (SHA-256(salt ‖ device id), first 4 bytes big-endian, mod 10,000)
 * on node:crypto, synchronously: the evidence writer buckets every active record of every batch
 * inside the ingest transaction, and a WebCrypto digest there costs a promise and a thread-pool
 * job each. bucket.test.ts checks that both give the same bucket.
 */
export function rolloutBucketSync(saltHex: string, deviceId: string): number {
  const key = `${saltHex}\u0000${deviceId}`;
  let bucket = buckets.get(key);
  if (bucket === undefined) {
    const digest = createHash('sha256').update(Buffer.from(saltHex, 'hex')).update(deviceId, 'utf8').digest();
    bucket = digest.readUInt32BE(0) % MAX_SHARE_BPS;
    // A fixed function of its inputs: kept for the installs that report again (every batch of every
    // install buckets each of its active records), the oldest dropped first when full.
    if (buckets.size >= MAX_BUCKETS) buckets.delete(buckets.keys().next().value!);
    buckets.set(key, bucket);
  }
  return bucket;
}

/** Install-and-rollout pairs whose bucket is kept (about 150 bytes each). */
const MAX_BUCKETS = 100_000;
const buckets = new Map<string, number>();
