import { type DeviceSegment, MAX_RECORDS_PER_BATCH, type TelemetryBatch } from '@edgeship/protocol';
import type { TelemetryCollector } from './collector.ts';
import type { TelemetryOutbox } from './outbox.ts';

export interface BatchIdentity {
  deviceId: string;
  app: string;
  channel: string;
  runtimeVersion: string;
}

/**
 * Seals what the collector gathered into batches and queues them: the moment counts become
 * durable. Called on a timer, when the page is hidden, and before an update check.
 */
export class TelemetryReporter {
  private windowStart = new Date();

  constructor(
    private readonly collector: TelemetryCollector,
    private readonly outbox: TelemetryOutbox,
    private readonly identity: BatchIdentity,
    private readonly now: () => Date = () => new Date(),
    /** This device's coarse segment (protocol deviceSegmentOf), carried by every record. */
    private readonly segment?: DeviceSegment,
  ) {}

  async seal(): Promise<TelemetryBatch[]> {
    if (this.collector.isEmpty) return [];
    const drained = this.collector.drain(await storagePersisted());
    const segment = this.segment && Object.keys(this.segment).length > 0 ? this.segment : undefined;
    const records = segment ? drained.map((r) => ({ ...r, segment })) : drained;
    const windowEnd = this.now();
    let dropped = await this.outbox.takeDroppedCount();
    const batches: TelemetryBatch[] = [];
    for (let i = 0; i < records.length; i += MAX_RECORDS_PER_BATCH) {
      const batch: TelemetryBatch = {
        schema: 1,
        batchId: crypto.randomUUID(),
        ...this.identity,
        windowStart: this.windowStart.toISOString(),
        windowEnd: windowEnd.toISOString(),
        dropped,
        records: records.slice(i, i + MAX_RECORDS_PER_BATCH),
      };
      dropped = 0;
      await this.outbox.enqueue(batch);
      batches.push(batch);
    }
    this.windowStart = windowEnd;
    return batches;
  }
}

/** Whether the origin's storage is persisted (readable in workers; only the page can ask for it). */
async function storagePersisted(): Promise<boolean | undefined> {
  try {
    return (await globalThis.navigator?.storage?.persisted?.()) ?? undefined;
  } catch {
    return undefined;
  }
}
