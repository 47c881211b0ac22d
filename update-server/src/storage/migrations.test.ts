import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { TelemetryStore } from '../telemetry/store.ts';
import { makeBatch, makeRecord } from '../telemetry/testing.ts';
import { MIGRATIONS, migrateToLatest } from './migrations.ts';
import { openStorage, SQLITE_FILE, type Storage } from './open.ts';
import { closeStorage, createTestSchema, type TestSchema } from './registry.suite.ts';

const W = 1_800_000_000;
const CHANNEL = { app: 'app', channel: 'stable' };
const A = 'device-a';
const B = 'device-b';

describe.each(['sqlite', 'postgres'] as const)('0017: releases into the device windows (%s)', (dialect) => {
  let dir: string | undefined;
  let schema: TestSchema | undefined;
  let storage: Storage | undefined;
  afterAll(async () => {
    if (storage) await closeStorage(storage);
    await schema?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A database at migration 0016 (`telemetry_devices`, one row per device, window and release). */
  async function oldDatabase(): Promise<void> {
    dir = await mkdtemp(join(tmpdir(), 'edgeship-migration-'));
    // biome-ignore lint/suspicious/noExplicitAny: the old schema has no table types.
    let db: Kysely<any>;
    if (dialect === 'postgres') {
      schema = await createTestSchema();
      db = new Kysely({
        dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: schema.url }) }),
      });
    } else {
      db = new Kysely({
        dialect: new SqliteDialect({ database: new SqliteDatabase(join(dir, SQLITE_FILE)) }),
      });
    }
    try {
      await migrateToLatest(db, dialect, {
        ...(schema && { schema: schema.name }),
        to: '0016_schedule_segment_hold',
      });
      const window = (device_id: string, window_start: number) => ({
        ...CHANNEL,
        device_id,
        window_start,
        batches: 1,
        inferences: 3,
      });
      await db
        .insertInto('telemetry_device_windows')
        .values([window(A, W), window(B, W), window(A, W + 60)])
        .execute();
      const device = (
        device_id: string,
        window_start: number,
        model: string,
        version: string,
        role = 'active',
      ) => ({
        ...CHANNEL,
        device_id,
        window_start,
        model,
        version,
        role,
      });
      await db
        .insertInto('telemetry_devices')
        .values([
          device(A, W, 'm1', '1.0.0'),
          device(A, W, 'm2', '1.0.0'),
          device(A, W, 'm1', '1.1.0', 'shadow'),
          device(B, W, 'm1', '1.0.0'),
          device(A, W + 60, 'm1', '1.1.0'),
          // Its window row is gone (a prune interrupted between the two tables): dropped.
          device('device-c', W, 'm1', '1.0.0'),
        ])
        .execute();
    } finally {
      await db.destroy();
    }
  }

  it('moves every device row into its window row, and the queries read the same counts', async () => {
    expect(Object.keys(MIGRATIONS)).toContain('0017_device_window_releases');
    await oldDatabase();
    storage = await openStorage({ dataDir: dir!, ...(schema && { databaseUrl: schema.url }) });
    const store = new TelemetryStore(storage.db, storage.dialect);
    const filter = { ...CHANNEL, since: W };

    const counts = await store.deviceCounts(filter);
    const byRelease = (rows: typeof counts) =>
      Object.fromEntries(rows.map((r) => [`${r.model}@${r.version}/${r.role}`, r.devices]));
    expect(byRelease(counts)).toEqual({
      'm1@1.0.0/active': 2,
      'm2@1.0.0/active': 1,
      'm1@1.1.0/shadow': 1,
      'm1@1.1.0/active': 1,
    });
    const perWindow = await store.deviceCounts(filter, 60);
    expect(perWindow.filter((r) => r.bucket === W + 60).map((r) => [r.model, r.version, r.devices])).toEqual([
      ['m1', '1.1.0', 1],
    ]);
    expect(await store.totalDevices({ ...filter, model: 'm1' })).toEqual(new Map([[null, 2]]));
    expect(await store.totalDevices({ ...filter, model: 'm1' }, 60)).toEqual(
      new Map([
        [W, 2],
        [W + 60, 1],
      ]),
    );
    const latest = (await store.latestVersions(filter)).map(
      (r) => `${r.model} ${r.deviceId} ${r.windowStart - W} ${r.version}`,
    );
    expect(latest.sort()).toEqual([`m1 ${A} 60 1.1.0`, `m1 ${B} 0 1.0.0`, `m2 ${A} 0 1.0.0`]);

    // Kept, empty, for the previous release's processes during a rolling upgrade.
    const leftover = await sql<{ n: number | string }>`select count(*) as n from telemetry_devices`.execute(
      storage.db,
    );
    expect(Number(leftover.rows[0]!.n)).toBe(0);
  });

  it('adds a batch to a migrated row: its releases joined to those the row held, its counts summed', async () => {
    const store = new TelemetryStore(storage!.db, storage!.dialect);
    const cap = { batchesPerWindow: 100, inferencesPerWindow: 1_000_000 };
    const batch = makeBatch(A, [makeRecord({ model: 'm2', version: '1.0.0', latenciesMs: [4, 4] })], {
      ...CHANNEL,
      deviceId: A,
    });
    expect(await store.ingest([batch], W + 60, cap, new Date().toISOString())).toEqual(['accepted']);
    const latest = (await store.latestVersions({ ...CHANNEL, since: W + 60 })).map(
      (r) => `${r.model} ${r.deviceId} ${r.version}`,
    );
    expect(latest.sort()).toEqual([`m1 ${A} 1.1.0`, `m2 ${A} 1.0.0`]);
    const row = await storage!.db
      .selectFrom('telemetry_device_windows')
      .select(['batches', 'inferences', 'releases'])
      .where('device_id', '=', A)
      .where('window_start', '=', W + 60)
      .executeTakeFirstOrThrow();
    expect({ batches: Number(row.batches), inferences: Number(row.inferences) }).toEqual({
      batches: 2,
      inferences: 5,
    });
    expect(JSON.parse(row.releases)).toEqual([
      ['m1', '1.1.0', 'active'],
      ['m2', '1.0.0', 'active'],
    ]);
    // The same batch again, alone and twice in one group: nothing more is counted or listed.
    const again = await store.ingest([batch, batch], W + 60, cap, new Date().toISOString());
    expect(again).toEqual(['duplicate', 'duplicate']);
    const after = await sql<{
      n: number | string;
    }>`select count(*) as n from telemetry_device_windows`.execute(storage!.db);
    expect(Number(after.rows[0]!.n)).toBe(3);
  });
});
