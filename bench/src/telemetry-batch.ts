// Valid telemetry batches (checked against the protocol's own schema), each with a fresh
// idempotency key so the server ingests every one instead of deduplicating.
import { randomUUID } from 'node:crypto';
import { type TelemetryBatch, TelemetryBatchSchema } from '@edgeship/protocol';

export function telemetryBatch(deviceIndex: number, records = 2): TelemetryBatch {
  const end = new Date();
  const start = new Date(end.getTime() - 60_000);
  const batch: TelemetryBatch = {
    schema: 1,
    batchId: randomUUID(),
    deviceId: `bench-device-${deviceIndex.toString(36).padStart(6, '0')}`,
    app: 'demo-app',
    channel: 'stable',
    runtimeVersion: '0.1.0',
    windowStart: start.toISOString(),
    windowEnd: end.toISOString(),
    dropped: 0,
    records: Array.from({ length: records }, (_, i) => ({
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
  };
  return TelemetryBatchSchema.parse(batch);
}

/** Whether the server has the ingest endpoint (another helper is building it). */
export async function hasTelemetryIngest(
  server: string,
): Promise<{ ok: boolean; status: number; body: string }> {
  const response = await fetch(`${server}/v1/telemetry`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(telemetryBatch(0)),
  });
  const body = await response.text();
  return { ok: response.ok, status: response.status, body: body.slice(0, 300) };
}

/**
 * A request body for load generation: the validated batch of `telemetryBatch` with a fresh
 * batchId and device id, without re-validating (the load generator must not be the bottleneck).
 */
export function telemetryBody(deviceIndex: number): string {
  template ??= telemetryBatch(0);
  return JSON.stringify({
    ...template,
    batchId: randomUUID(),
    deviceId: `bench-device-${deviceIndex.toString(36).padStart(6, '0')}`,
  });
}

let template: TelemetryBatch | undefined;
