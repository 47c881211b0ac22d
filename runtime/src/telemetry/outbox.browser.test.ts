import type { TelemetryBatch } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import { testBatch, testRecord } from '../../../test/support/telemetry-batch.ts';
import { TelemetryOutbox } from './outbox.ts';

function batch(n: number): TelemetryBatch {
  return testBatch([testRecord({ inferences: n })]);
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
