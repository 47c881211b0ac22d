import type { TelemetryBatch, TelemetryRecord } from '@edgeship/protocol';

/**
 * The one telemetry batch and record builder (Node and browser tests, the benchmarks and the
 * fleet simulator through update-server/src/telemetry/testing.ts): a valid record or batch of
 * neutral values, any field replaced by `fields`.
 */

/** A well-formed device id (an Ed25519 public key, base64url) that signs nothing. */
export const TEST_DEVICE_ID = 'O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik';

/** One active model's record: `vad@1.0.0` on WASM, no inferences yet. */
export function testRecord(fields: Partial<TelemetryRecord> = {}): TelemetryRecord {
  return {
    model: 'vad',
    version: '1.0.0',
    backend: 'wasm',
    role: 'active',
    inferences: 0,
    errors: {},
    latencyMs: {},
    downloadBytes: 0,
    downloadMs: 0,
    features: [],
    ...fields,
  };
}

/** A batch of `records` from TEST_DEVICE_ID with a fresh batch id, over the first second of 1970. */
export function testBatch(
  records: TelemetryRecord[] = [testRecord()],
  fields: Partial<TelemetryBatch> = {},
): TelemetryBatch {
  return {
    schema: 1,
    batchId: crypto.randomUUID(),
    deviceId: TEST_DEVICE_ID,
    app: 'demo-app',
    channel: 'stable',
    runtimeVersion: '0.1.0',
    windowStart: new Date(0).toISOString(),
    windowEnd: new Date(1000).toISOString(),
    dropped: 0,
    records,
    ...fields,
  };
}
