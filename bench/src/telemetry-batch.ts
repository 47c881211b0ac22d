// Valid telemetry batches (checked against the protocol's own schema), each with a fresh
// idempotency key so the server ingests every one instead of deduplicating.
import { generateKeyPairSync, type KeyObject, randomUUID, sign } from 'node:crypto';
import {
  TELEMETRY_SIGNATURE_HEADER,
  type TelemetryBatch,
  TelemetryBatchSchema,
  telemetrySignedBytes,
  toBase64Url,
} from '@edgeship/protocol';
import { makeBatch } from '../../update-server/src/telemetry/testing.ts';

/** Install keys of the bench devices, made on first use (the device id is the public key). */
const installs = new Map<number, { deviceId: string; key: KeyObject }>();
function install(deviceIndex: number) {
  let found = installs.get(deviceIndex);
  if (!found) {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    found = { deviceId: publicKey.export({ format: 'jwk' }).x!, key: privateKey };
    installs.set(deviceIndex, found);
  }
  return found;
}

/** The signature header for a body (node:crypto signs synchronously, as a load generator needs). */
function signatureHeader(deviceIndex: number, body: string): Record<string, string> {
  const bytes = telemetrySignedBytes(new TextEncoder().encode(body));
  return {
    [TELEMETRY_SIGNATURE_HEADER]: toBase64Url(new Uint8Array(sign(null, bytes, install(deviceIndex).key))),
  };
}

export function telemetryBatch(deviceIndex: number, records = 2): TelemetryBatch {
  const batch = makeBatch(
    install(deviceIndex).deviceId,
    Array.from({ length: records }, (_, i) => ({
      model: 'vad',
      version: '1.0.0',
      backend: i % 2 ? ('webgpu' as const) : ('wasm' as const),
      role: 'active' as const,
      inferences: 1875,
      errors: {},
      latencyMs: { '40': 1200, '45': 600, '52': 75 },
      downloadBytes: 0,
      downloadMs: 0,
      features: [
        { name: 'frame_rms', counts: [300, 280, 290, 300, 280, 225, 200] },
        { name: 'speech_probability', counts: [900, 200, 100, 100, 200, 375] },
      ],
    })),
  );
  return TelemetryBatchSchema.parse(batch);
}

/** Whether the server ingests a valid signed batch (and if not, what it answered). */
export async function hasTelemetryIngest(
  server: string,
): Promise<{ ok: boolean; status: number; body: string }> {
  const batch = JSON.stringify(telemetryBatch(0));
  const response = await fetch(`${server}/v1/telemetry`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signatureHeader(0, batch) },
    body: batch,
  });
  const body = await response.text();
  return { ok: response.ok, status: response.status, body: body.slice(0, 300) };
}

/**
 * A request for load generation: the validated batch of `telemetryBatch` with a fresh batchId
 * and device id, signed by that device's install key, without re-validating (the load generator
 * must not be the bottleneck).
 */
export function telemetryRequest(deviceIndex: number): { body: string; headers: Record<string, string> } {
  template ??= telemetryBatch(0);
  const body = JSON.stringify({
    ...template,
    batchId: randomUUID(),
    deviceId: install(deviceIndex).deviceId,
  });
  return { body, headers: { 'content-type': 'application/json', ...signatureHeader(deviceIndex, body) } };
}

let template: TelemetryBatch | undefined;

/**
 * Requests made ahead of a run (fresh batch ids, signed), so that the load generator, on the same
 * 2 cores as the server, spends no Ed25519 signature or JSON encoding per request while it runs.
 */
export function presignedRequests(
  count: number,
  devices: number,
): Array<{ body: string; headers: Record<string, string> }> {
  return Array.from({ length: count }, (_, i) => telemetryRequest(i % devices));
}
