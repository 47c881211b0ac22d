import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TelemetryBatch } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from '../storage/open.ts';
import { closeStorage, createTestSchema, type TestSchema } from '../storage/registry.suite.ts';
import { type AggregateValues, batchDeltas, mergeValues } from './aggregate.ts';
import { TelemetryStore } from './store.ts';
import { makeBatch, makeRecord } from './testing.ts';

const W = 1_800_000_000;
const CAP = { batchesPerWindow: 1_000, inferencesPerWindow: 1_000_000_000 };
const AT = new Date(W * 1000).toISOString();

let n = 0;
function batch(app = 'app'): TelemetryBatch {
  n += 1;
  return makeBatch(
    `device-${n % 7}`,
    [
      makeRecord({ model: 'm', version: '1.0.0', latenciesMs: [10 + (n % 5), 40], energy: [n % 3, 1, 2] }),
      makeRecord({
        model: 'm',
        version: '1.0.0',
        backend: 'webgpu',
        inferences: n,
        errors: { E_HEALTH_CHECK: n % 2 },
      }),
    ],
    { app, channel: 'stable' },
  );
}

/** What the aggregates must say: every accepted batch's deltas summed, in order. */
function expected(batches: TelemetryBatch[]): Map<string, AggregateValues> {
  const out = new Map<string, AggregateValues>();
  for (const b of batches) {
    for (const [, [key, values]] of batchDeltas(b, W)) {
      const id = `${key.backend}`;
      const prev = out.get(id);
      out.set(id, prev ? mergeValues(prev, values) : values);
    }
  }
  return out;
}

async function stored(store: TelemetryStore, app = 'app'): Promise<Map<string, AggregateValues>> {
  const rows = await store.aggregates({ app, channel: 'stable', since: W, until: W + 1 });
  return new Map(rows.map(([key, values]) => [key.backend, values]));
}

describe.each(['sqlite', 'postgres'] as const)('aggregate rows kept in memory (%s)', (dialect) => {
  let dir: string;
  let schema: TestSchema | undefined;
  const opened: Storage[] = [];

  /** Another process on the same database: its own store, and on PostgreSQL its own pool. */
  async function open(): Promise<TelemetryStore> {
    if (dialect === 'sqlite' && opened[0]) return new TelemetryStore(opened[0].db, 'sqlite');
    const storage = await openStorage({ dataDir: dir, ...(schema ? { databaseUrl: schema.url } : {}) });
    opened.push(storage);
    return new TelemetryStore(storage.db, storage.dialect);
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgeship-aggregate-rows-'));
    if (dialect === 'postgres') schema = await createTestSchema();
  });
  afterAll(async () => {
    for (const storage of opened) await closeStorage(storage);
    await schema?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('sums exactly when two writers take turns on the same rows', async () => {
    const [a, b] = [await open(), await open()];
    const sent: TelemetryBatch[] = [];
    for (const writer of [a, a, b, a, b, b, a, a, b, a]) {
      const group = [batch(), batch()];
      expect(await writer.ingest(group, W, CAP, AT)).toEqual(['accepted', 'accepted']);
      sent.push(...group);
      // Each writer's view after its own write is the database's: the other's turns are in it.
      expect(await stored(writer)).toEqual(expected(sent));
    }
    expect((await stored(a)).get('wasm')!.batches).toBe(20);
  });

  it('forgets what a group that did not commit added, and counts the next group once', async () => {
    const store = await open();
    const first = batch('rollback');
    await store.ingest([first], W, CAP, AT);
    await expect(
      store.ingest([batch('rollback')], W, CAP, AT, async () => {
        throw new Error('hook failed');
      }),
    ).rejects.toThrow('hook failed');
    const next = batch('rollback');
    await store.ingest([next], W, CAP, AT);
    expect(await stored(store, 'rollback')).toEqual(expected([first, next]));
  });

  it('starts a row again from the group when the row was deleted since it was kept', async () => {
    const store = await open();
    await store.ingest([batch('pruned')], W, CAP, AT);
    await opened[0]!.db.deleteFrom('telemetry_aggregates').where('app', '=', 'pruned').execute();
    const next = batch('pruned');
    await store.ingest([next], W, CAP, AT);
    expect(await stored(store, 'pruned')).toEqual(expected([next]));
  });
});
