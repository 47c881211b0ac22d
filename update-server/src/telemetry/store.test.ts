import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TelemetryBatch } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from '../storage/open.ts';
import { closeStorage, createTestSchema, type TestSchema } from '../storage/registry.suite.ts';
import { TelemetryStore } from './store.ts';
import { makeBatch, makeRecord } from './testing.ts';

const W = 1_800_000_000;
const AT = new Date(W * 1000).toISOString();

function batch(device: string, channel: string, version = '1.0.0', inferences = 3): TelemetryBatch {
  return makeBatch(device, [makeRecord({ model: 'm', version, inferences })], { app: 'store', channel });
}

describe.each(['sqlite', 'postgres'] as const)('telemetry store ingest (%s)', (dialect) => {
  let dir: string;
  let schema: TestSchema | undefined;
  let storage: Storage;
  let store: TelemetryStore;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgeship-store-'));
    if (dialect === 'postgres') schema = await createTestSchema();
    storage = await openStorage({ dataDir: dir, ...(schema ? { databaseUrl: schema.url } : {}) });
    store = new TelemetryStore(storage.db, storage.dialect);
  });
  afterAll(async () => {
    await closeStorage(storage);
    await schema?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const windows = async (channel: string) =>
    (
      await storage.db
        .selectFrom('telemetry_device_windows')
        .select(['device_id', 'batches', 'inferences', 'releases'])
        .where('app', '=', 'store')
        .where('channel', '=', channel)
        .where('window_start', '=', W)
        .execute()
    ).map((r) => ({ ...r, batches: Number(r.batches), inferences: Number(r.inferences) }));

  it('takes a group larger than one statement held before, duplicates and caps decided per batch', async () => {
    const cap = { batchesPerWindow: 2, inferencesPerWindow: 1_000 };
    // 450 devices, one batch each, then each device again with another release: more ids and
    // devices than the 400 one statement's parameter list carried.
    const first = Array.from({ length: 450 }, (_, i) => batch(`big-${i}`, 'big'));
    expect(new Set(await store.ingest(first, W, cap, AT))).toEqual(new Set(['accepted']));
    const second = first.map((b) => ({ ...batch('', 'big', '2.0.0'), deviceId: b.deviceId }));
    const third = batch('big-0', 'big');
    const outcomes = await store.ingest([...second, first[7]!, second[3]!, third], W, cap, AT);
    expect(outcomes.slice(0, 450)).toEqual(second.map(() => 'accepted'));
    // A batch stored before, one earlier in the same group, and a device's third batch of the window.
    expect(outcomes.slice(450)).toEqual(['duplicate', 'duplicate', 'capped']);
    const rows = await windows('big');
    expect(rows).toHaveLength(450);
    for (const r of rows) {
      expect([r.batches, r.inferences]).toEqual([2, 6]);
      expect(JSON.parse(r.releases)).toEqual([
        ['m', '1.0.0', 'active'],
        ['m', '2.0.0', 'active'],
      ]);
    }
    const ids = [...first, ...second].map((b) => b.batchId);
    expect((await store.acceptedBatchIds([...ids, third.batchId])).size).toBe(900);
  });

  it('writes a group of several channels, each device row in its own channel', async () => {
    const cap = { batchesPerWindow: 10, inferencesPerWindow: 1_000 };
    const a = batch('multi-0', 'one', '1.0.0', 4);
    const b = { ...batch('', 'two', '1.0.0', 5), deviceId: a.deviceId };
    const c = batch('multi-0', 'one', '1.1.0', 6);
    expect(await store.ingest([a, b, c, a], W, cap, AT)).toEqual([
      'accepted',
      'accepted',
      'accepted',
      'duplicate',
    ]);
    expect(await windows('one')).toEqual([
      {
        device_id: a.deviceId,
        batches: 2,
        inferences: 10,
        releases: JSON.stringify([
          ['m', '1.0.0', 'active'],
          ['m', '1.1.0', 'active'],
        ]),
      },
    ]);
    expect((await windows('two')).map((r) => [r.batches, r.inferences])).toEqual([[1, 5]]);
  });
});
