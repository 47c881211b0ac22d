import type { TelemetryBatch } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import { TelemetryOutbox } from './outbox.ts';

function batch(n: number): TelemetryBatch {
  return {
    schema: 1,
    batchId: crypto.randomUUID(),
    deviceId: 'O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik',
    app: 'demo-app',
    channel: 'stable',
    runtimeVersion: '0.1.0',
    windowStart: new Date(0).toISOString(),
    windowEnd: new Date(1000).toISOString(),
    dropped: 0,
    records: [
      {
        model: 'vad',
        version: '1.0.0',
        backend: 'wasm',
        role: 'active',
        inferences: n,
        errors: {},
        latencyMs: {},
        downloadBytes: 0,
        downloadMs: 0,
        features: [],
      },
    ],
  };
}

describe('TelemetryOutbox in Chromium IndexedDB', () => {
  it('keeps queued batches across a close and reopen, in order', async () => {
    const name = `outbox-${crypto.randomUUID()}`;
    const first = await TelemetryOutbox.open(name);
    const queued = [batch(1), batch(2), batch(3)];
    for (const b of queued) await first.enqueue(b);
    first.close(); // as if the tab were closed

    const reopened = await TelemetryOutbox.open(name);
    const kept = await reopened.peek(10);
    expect(kept.map((q) => q.batch.batchId)).toEqual(queued.map((b) => b.batchId));
    await reopened.acknowledge(queued[0]!.batchId);
    expect(await reopened.size()).toBe(2);
    reopened.close();
  });
});
