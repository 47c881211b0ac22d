import type { TelemetryBatch } from '@edgeship/protocol';
import {
  type DBSchema,
  type IDBPDatabase,
  type IDBPObjectStore,
  type IDBPTransaction,
  openDB,
  type StoreNames,
} from 'idb';

interface OutboxSchema extends DBSchema {
  batches: { key: string; value: QueuedBatch; indexes: { byQueuedAt: number } };
  counters: { key: string; value: number };
}

export interface QueuedBatch {
  batch: TelemetryBatch;
  queuedAt: number;
  attempts: number;
}

export interface OutboxLimits {
  /** Most batches kept; the oldest are dropped first. */
  maxBatches: number;
  /** Oldest batch kept, in ms; older ones are dropped when the outbox is next touched. */
  maxAgeMs: number;
}

export const DEFAULT_OUTBOX_LIMITS: OutboxLimits = { maxBatches: 500, maxAgeMs: 7 * 86_400_000 };

/**
 * Telemetry batches waiting to be sent, in IndexedDB so they survive offline periods, reloads
 * and crashes. Bounded in count and age; what is dropped is counted and reported with the next
 * batch, so the server knows data is missing rather than silently undercounting.
 */
export class TelemetryOutbox {
  private constructor(
    private readonly db: IDBPDatabase<OutboxSchema>,
    private readonly limits: OutboxLimits,
    private readonly now: () => number,
  ) {}

  static async open(
    name = 'edgeship-telemetry',
    limits: OutboxLimits = DEFAULT_OUTBOX_LIMITS,
    now: () => number = Date.now,
  ): Promise<TelemetryOutbox> {
    const db = await openDB<OutboxSchema>(name, 1, {
      upgrade(db) {
        db.createObjectStore('batches', { keyPath: 'batch.batchId' }).createIndex('byQueuedAt', 'queuedAt');
        db.createObjectStore('counters');
      },
    });
    return new TelemetryOutbox(db, limits, now);
  }

  /** Adds a batch in one transaction with the trimming it causes. */
  async enqueue(batch: TelemetryBatch): Promise<void> {
    const tx = this.db.transaction(['batches', 'counters'], 'readwrite');
    await tx.objectStore('batches').put({ batch, queuedAt: this.now(), attempts: 0 });
    await this.trim(tx);
    await tx.done;
  }

  /** The oldest batches first, up to `limit`. */
  async peek(limit: number): Promise<QueuedBatch[]> {
    const tx = this.db.transaction(['batches', 'counters'], 'readwrite');
    await this.trim(tx);
    const out: QueuedBatch[] = [];
    let cursor = await tx.objectStore('batches').index('byQueuedAt').openCursor();
    while (cursor && out.length < limit) {
      out.push(cursor.value);
      cursor = await cursor.continue();
    }
    await tx.done;
    return out;
  }

  /** Removes a batch the server acknowledged. */
  async acknowledge(batchId: string): Promise<void> {
    await this.db.delete('batches', batchId);
  }

  async recordAttempt(batchId: string): Promise<void> {
    const tx = this.db.transaction('batches', 'readwrite');
    const queued = await tx.store.get(batchId);
    if (queued) await tx.store.put({ ...queued, attempts: queued.attempts + 1 });
    await tx.done;
  }

  /** Drops a batch the server refused for good (it would be refused again), counting it. */
  async discard(batchId: string): Promise<void> {
    const tx = this.db.transaction(['batches', 'counters'], 'readwrite');
    await tx.objectStore('batches').delete(batchId);
    await bump(tx.objectStore('counters'), 1);
    await tx.done;
  }

  /** Batches dropped since the last call, reset to zero in the same transaction. */
  async takeDroppedCount(): Promise<number> {
    const tx = this.db.transaction('counters', 'readwrite');
    const dropped = (await tx.store.get('dropped')) ?? 0;
    await tx.store.put(0, 'dropped');
    await tx.done;
    return dropped;
  }

  async size(): Promise<number> {
    return this.db.count('batches');
  }

  close(): void {
    this.db.close();
  }

  private async trim(tx: ReadWrite): Promise<void> {
    const batches = tx.objectStore('batches');
    let dropped = 0;
    let excess = (await batches.count()) - this.limits.maxBatches;
    const oldestAllowed = this.now() - this.limits.maxAgeMs;
    let cursor = await batches.index('byQueuedAt').openCursor();
    while (cursor && (excess > 0 || cursor.value.queuedAt < oldestAllowed)) {
      await cursor.delete();
      dropped += 1;
      excess -= 1;
      cursor = await cursor.continue();
    }
    if (dropped > 0) await bump(tx.objectStore('counters'), dropped);
  }
}

type ReadWrite = IDBPTransaction<OutboxSchema, ['batches', 'counters'], 'readwrite'>;
type Counters = IDBPObjectStore<OutboxSchema, ArrayLike<StoreNames<OutboxSchema>>, 'counters', 'readwrite'>;

async function bump(counters: Counters, by: number): Promise<void> {
  await counters.put(((await counters.get('dropped')) ?? 0) + by, 'dropped');
}
