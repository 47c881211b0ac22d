import { createHash } from 'node:crypto';
import type { TelemetryBatch } from '@edgeship/protocol';
import {
  type Insertable,
  type Kysely,
  type QueryCreator,
  type RawBuilder,
  sql,
  type Transaction,
} from 'kysely';
import { groupBy } from '../group-by.ts';
import type { Database, DialectName } from '../storage/schema.ts';
import { type AggregateKey, type AggregateValues, batchInferences } from './aggregate.ts';
import { AggregateRows, aggregateFromRow } from './aggregate-rows.ts';

/** What one device may contribute to one window; more is refused until the next window. */
export interface DeviceCap {
  batchesPerWindow: number;
  inferencesPerWindow: number;
}

export type IngestOutcome = 'accepted' | 'duplicate' | 'capped';

export interface AggregateFilter {
  app: string;
  channel: string;
  model?: string;
  versions?: string[];
  role?: 'active' | 'shadow';
  /** Epoch seconds, inclusive. */
  since: number;
  /** Epoch seconds, exclusive. */
  until?: number;
}

export interface DeviceCount {
  /** Start of the step window (epoch seconds), or null for the whole range. */
  bucket: number | null;
  model: string;
  version: string;
  role: string;
  devices: number;
}

// Rows per multi-row statement: far below SQLite's 32,766 and PostgreSQL's 65,535 parameters.
const ROWS_PER_STATEMENT = 400;

const num = (v: number | string | bigint | null | undefined): number => (v == null ? 0 : Number(v));

/**
 * The telemetry tables on Kysely (SQLite and PostgreSQL). `ingest` writes a whole group of
 * batches in one transaction: de-duplicate, cap, aggregate. On SQLite the store shares the
 * registry's one connection, so transactions never interleave; on PostgreSQL a transaction-level
 * advisory lock per app/channel makes concurrent processes take turns on the same rows.
 */
export class TelemetryStore {
  /** The current window's aggregate rows per channel, as last written (telemetry/aggregate-rows.ts). */
  private readonly aggregateRows: AggregateRows;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectName,
  ) {
    this.aggregateRows = new AggregateRows(dialect);
  }

  /** `afterWrite` runs in the same transaction with the indexes of the accepted batches. */
  async ingest(
    batches: TelemetryBatch[],
    windowStart: number,
    cap: DeviceCap,
    receivedAt: string,
    afterWrite?: (trx: Transaction<Database>, accepted: number[]) => Promise<void>,
  ): Promise<IngestOutcome[]> {
    const channels = [...new Set(batches.map((b) => `${b.app}\u0000${b.channel}`))].sort();
    try {
      return await this.db.transaction().execute(async (trx) => {
        if (this.dialect === 'postgres') {
          for (const channel of channels)
            await sql`select pg_advisory_xact_lock(${lockKey(channel)})`.execute(trx);
        }
        const outcomes = await this.classify(trx, batches, windowStart, cap);
        const accepted = batches.filter((_, i) => outcomes[i] === 'accepted');
        if (accepted.length === 0) return outcomes;
        await this.insertRows(trx, accepted, windowStart, receivedAt);
        await this.aggregateRows.add(trx, accepted, windowStart);
        await afterWrite?.(
          trx,
          outcomes.flatMap((o, i) => (o === 'accepted' ? [i] : [])),
        );
        return outcomes;
      });
    } catch (error) {
      // Not committed: what memory kept of these channels' windows may hold numbers the database
      // does not (telemetry/aggregate-rows.ts).
      this.aggregateRows.forget(channels);
      throw error;
    }
  }

  /** Duplicates (seen before, or earlier in this group) and batches over their device's cap. */
  private async classify(
    trx: Transaction<Database>,
    batches: TelemetryBatch[],
    windowStart: number,
    cap: DeviceCap,
  ): Promise<IngestOutcome[]> {
    const seen = new Set<string>();
    const used = new Map<string, { batches: number; inferences: number }>();
    const ids = batches.map((b) => b.batchId);
    const channels = groupBy(batches, (b) => `${b.app}\u0000${b.channel}`);
    const [only, ...more] = channels.keys();
    const devices = [...new Set(batches.map((b) => b.deviceId))];
    if (
      this.dialect === 'postgres' &&
      only !== undefined &&
      more.length === 0 &&
      ids.length <= ROWS_PER_STATEMENT &&
      devices.length <= ROWS_PER_STATEMENT
    ) {
      // One channel, one round trip: the known batch ids and the devices' use of this window. Not
      // on SQLite: no round trip to save, and a statement per pair of list lengths would crowd
      // out the prepared statements (storage/statement-cache.ts).
      const [app, ch] = only.split('\u0000') as [string, string];
      const rows = await trx
        .selectFrom('telemetry_batches')
        .select([
          sql<string>`'batch'`.as('kind'),
          'batch_id as id',
          sql<number | string>`0`.as('batches'),
          sql<number | string>`0`.as('inferences'),
        ])
        .where('batch_id', 'in', ids)
        .unionAll(
          trx
            .selectFrom('telemetry_device_windows')
            .select([sql<string>`'device'`.as('kind'), 'device_id as id', 'batches', 'inferences'])
            .where('window_start', '=', windowStart)
            .where('app', '=', app)
            .where('channel', '=', ch)
            .where('device_id', 'in', devices),
        )
        .execute();
      for (const r of rows) {
        if (r.kind === 'batch') seen.add(r.id);
        else used.set(`${only}\u0000${r.id}`, { batches: num(r.batches), inferences: num(r.inferences) });
      }
    } else {
      for (const part of chunks(ids, ROWS_PER_STATEMENT)) {
        const found = await trx
          .selectFrom('telemetry_batches')
          .select('batch_id')
          .where('batch_id', 'in', part)
          .execute();
        for (const row of found) seen.add(row.batch_id);
      }
      for (const [channel, group] of channels) {
        const [app, ch] = channel.split('\u0000') as [string, string];
        for (const part of chunks([...new Set(group.map((b) => b.deviceId))], ROWS_PER_STATEMENT)) {
          const rows = await trx
            .selectFrom('telemetry_device_windows')
            .select(['device_id', 'batches', 'inferences'])
            .where('window_start', '=', windowStart)
            .where('app', '=', app)
            .where('channel', '=', ch)
            .where('device_id', 'in', part)
            .execute();
          for (const r of rows) {
            used.set(`${channel}\u0000${r.device_id}`, {
              batches: num(r.batches),
              inferences: num(r.inferences),
            });
          }
        }
      }
    }
    return batches.map((batch) => {
      if (seen.has(batch.batchId)) return 'duplicate';
      seen.add(batch.batchId);
      const deviceKey = `${batch.app}\u0000${batch.channel}\u0000${batch.deviceId}`;
      const so = used.get(deviceKey) ?? { batches: 0, inferences: 0 };
      const next = { batches: so.batches + 1, inferences: so.inferences + batchInferences(batch) };
      if (next.batches > cap.batchesPerWindow || next.inferences > cap.inferencesPerWindow) return 'capped';
      used.set(deviceKey, next);
      return 'accepted';
    });
  }

  /**
   * The group's rows in `telemetry_batches`, `telemetry_device_windows` (summed per device) and
   * `telemetry_devices`. On PostgreSQL in one statement (two data-modifying CTEs) when each fits
   * in one: every statement is a round trip while the channel's lock is held.
   */
  private async insertRows(trx: Transaction<Database>, batches: TelemetryBatch[], w: number, at: string) {
    const batchRows = batchRowsOf(batches, w, at);
    const windowRows = deviceWindowRowsOf(batches, w);
    const deviceRows = deviceRowsOf(batches, w);
    const sizes = [batchRows.length, windowRows.length, deviceRows.length];
    if (this.dialect === 'postgres' && Math.min(...sizes) > 0 && Math.max(...sizes) <= ROWS_PER_STATEMENT) {
      await insertDevices(
        trx
          .with('new_batches', (db) => insertBatches(db, batchRows))
          .with('new_device_windows', (db) => upsertDeviceWindows(db, windowRows)),
        deviceRows,
      ).execute();
      return;
    }
    for (const part of chunks(batchRows, ROWS_PER_STATEMENT)) await insertBatches(trx, part).execute();
    for (const part of chunks(windowRows, ROWS_PER_STATEMENT)) await upsertDeviceWindows(trx, part).execute();
    for (const part of chunks(deviceRows, ROWS_PER_STATEMENT)) await insertDevices(trx, part).execute();
  }

  /** Aggregate rows in a time range, each with its key. */
  async aggregates(filter: AggregateFilter): Promise<Array<[AggregateKey, AggregateValues]>> {
    const rows = await this.db
      .selectFrom('telemetry_aggregates')
      .selectAll()
      .where('app', '=', filter.app)
      .where('channel', '=', filter.channel)
      .where('window_start', '>=', filter.since)
      .$if(filter.until !== undefined, (q) => q.where('window_start', '<', filter.until!))
      .$if(filter.model !== undefined, (q) => q.where('model', '=', filter.model!))
      .$if(filter.role !== undefined, (q) => q.where('role', '=', filter.role!))
      .$if(filter.versions !== undefined, (q) => q.where('version', 'in', filter.versions!))
      .orderBy('window_start')
      .execute();
    return rows.map(aggregateFromRow);
  }

  /** Every app/channel with aggregates since a time (for metrics over all channels). */
  async channelsSince(since: number): Promise<Array<{ app: string; channel: string }>> {
    return this.db
      .selectFrom('telemetry_aggregates')
      .select(['app', 'channel'])
      .distinct()
      .where('window_start', '>=', since)
      .execute();
  }

  /**
   * Distinct devices per release (and per step window when `stepSec` is given). A device counts
   * once per release however many windows it reported in.
   */
  async deviceCounts(filter: AggregateFilter, stepSec?: number): Promise<DeviceCount[]> {
    const bucket = bucketExpression(stepSec);
    const rows = await this.db
      .selectFrom('telemetry_devices')
      .select([
        bucket.as('bucket'),
        'model',
        'version',
        'role',
        (eb) => eb.fn.count<number | string>('device_id').distinct().as('devices'),
      ])
      .where('app', '=', filter.app)
      .where('channel', '=', filter.channel)
      .where('window_start', '>=', filter.since)
      .$if(filter.until !== undefined, (q) => q.where('window_start', '<', filter.until!))
      .$if(filter.model !== undefined, (q) => q.where('model', '=', filter.model!))
      .groupBy(['model', 'version', 'role'])
      .$if(stepSec !== undefined, (q) => q.groupBy(sql`1`))
      .execute();
    return rows.map((r) => ({
      bucket: r.bucket === null ? null : num(r.bucket),
      model: r.model,
      version: r.version,
      role: r.role,
      devices: num(r.devices),
    }));
  }

  /**
   * Each device's latest report per model in the range: its window and the versions it ran then
   * (several when it switched within that window). What "stuck on an old version" is judged on.
   */
  async latestVersions(
    filter: AggregateFilter,
  ): Promise<Array<{ model: string; deviceId: string; windowStart: number; version: string }>> {
    const latest = this.db
      .selectFrom('telemetry_devices')
      .select(['model', 'device_id', (eb) => eb.fn.max('window_start').as('last')])
      .where('app', '=', filter.app)
      .where('channel', '=', filter.channel)
      .where('role', '=', 'active')
      .where('window_start', '>=', filter.since)
      .$if(filter.until !== undefined, (q) => q.where('window_start', '<', filter.until!))
      .$if(filter.model !== undefined, (q) => q.where('model', '=', filter.model!))
      .groupBy(['model', 'device_id'])
      .as('latest');
    const rows = await this.db
      .selectFrom('telemetry_devices as d')
      .innerJoin(latest, (join) =>
        join
          .onRef('d.model', '=', 'latest.model')
          .onRef('d.device_id', '=', 'latest.device_id')
          .onRef('d.window_start', '=', 'latest.last'),
      )
      .select(['d.model', 'd.device_id', 'd.window_start', 'd.version'])
      .where('d.app', '=', filter.app)
      .where('d.channel', '=', filter.channel)
      .where('d.role', '=', 'active')
      .execute();
    return rows.map((r) => ({
      model: r.model,
      deviceId: r.device_id,
      windowStart: num(r.window_start),
      version: r.version,
    }));
  }

  /** Distinct devices that reported anything for a model (per step window when given). */
  async totalDevices(filter: AggregateFilter, stepSec?: number): Promise<Map<number | null, number>> {
    const bucket = bucketExpression(stepSec);
    const rows = await this.db
      .selectFrom('telemetry_devices')
      .select([
        bucket.as('bucket'),
        (eb) => eb.fn.count<number | string>('device_id').distinct().as('devices'),
      ])
      .where('app', '=', filter.app)
      .where('channel', '=', filter.channel)
      .where('window_start', '>=', filter.since)
      .where('role', '=', 'active')
      .$if(filter.until !== undefined, (q) => q.where('window_start', '<', filter.until!))
      .$if(filter.model !== undefined, (q) => q.where('model', '=', filter.model!))
      .$if(stepSec !== undefined, (q) => q.groupBy(sql`1`))
      .execute();
    return new Map(rows.map((r) => [r.bucket === null ? null : num(r.bucket), num(r.devices)]));
  }

  /** Batches the devices said they dropped, over accepted batches in the range. */
  async droppedOnDevices(filter: AggregateFilter): Promise<number> {
    const row = await this.db
      .selectFrom('telemetry_batches')
      .select((eb) => eb.fn.sum<number | string | null>('dropped').as('dropped'))
      .where('app', '=', filter.app)
      .where('channel', '=', filter.channel)
      .where('window_start', '>=', filter.since)
      .$if(filter.until !== undefined, (q) => q.where('window_start', '<', filter.until!))
      .executeTakeFirst();
    return num(row?.dropped);
  }

  /** Which of these batch ids were accepted (the crash tests read this). */
  async acceptedBatchIds(ids: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const part of chunks(ids, ROWS_PER_STATEMENT)) {
      const rows = await this.db
        .selectFrom('telemetry_batches')
        .select('batch_id')
        .where('batch_id', 'in', part)
        .execute();
      for (const r of rows) out.add(r.batch_id);
    }
    return out;
  }
}

function batchRowsOf(
  batches: TelemetryBatch[],
  w: number,
  at: string,
): Insertable<Database['telemetry_batches']>[] {
  return batches.map((b) => ({
    batch_id: b.batchId,
    device_id: b.deviceId,
    app: b.app,
    channel: b.channel,
    window_start: w,
    records: b.records.length,
    inferences: batchInferences(b),
    dropped: b.dropped,
    received_at: at,
  }));
}

function deviceWindowRowsOf(
  batches: TelemetryBatch[],
  w: number,
): Insertable<Database['telemetry_device_windows']>[] {
  const sums = new Map<
    string,
    {
      app: string;
      channel: string;
      device_id: string;
      window_start: number;
      batches: number;
      inferences: number;
    }
  >();
  for (const b of batches) {
    const k = `${b.app}\u0000${b.channel}\u0000${b.deviceId}`;
    const row = sums.get(k) ?? {
      app: b.app,
      channel: b.channel,
      device_id: b.deviceId,
      window_start: w,
      batches: 0,
      inferences: 0,
    };
    row.batches += 1;
    row.inferences += batchInferences(b);
    sums.set(k, row);
  }
  return [...sums.values()];
}

function deviceRowsOf(batches: TelemetryBatch[], w: number): Insertable<Database['telemetry_devices']>[] {
  const rows = new Map<string, Insertable<Database['telemetry_devices']>>();
  for (const b of batches) {
    for (const r of b.records) {
      const row = {
        app: b.app,
        channel: b.channel,
        model: r.model,
        version: r.version,
        role: r.role,
        window_start: w,
        device_id: b.deviceId,
      };
      rows.set(Object.values(row).join('\u0000'), row);
    }
  }
  return [...rows.values()];
}

// Generic over DB: the creator may carry the CTEs of insertRows as tables too (other names).
const creator = <DB extends Database>(db: QueryCreator<DB>) => db as unknown as QueryCreator<Database>;
type Rows<Table extends keyof Database> = Insertable<Database[Table]>[];

const insertBatches = <DB extends Database>(db: QueryCreator<DB>, rows: Rows<'telemetry_batches'>) =>
  creator(db).insertInto('telemetry_batches').values(rows);

const upsertDeviceWindows = <DB extends Database>(
  db: QueryCreator<DB>,
  rows: Rows<'telemetry_device_windows'>,
) =>
  creator(db)
    .insertInto('telemetry_device_windows')
    .values(rows)
    .onConflict((oc) =>
      oc.columns(['window_start', 'app', 'channel', 'device_id']).doUpdateSet((eb) => ({
        batches: eb('telemetry_device_windows.batches', '+', eb.ref('excluded.batches')),
        inferences: eb('telemetry_device_windows.inferences', '+', eb.ref('excluded.inferences')),
      })),
    );

const insertDevices = <DB extends Database>(db: QueryCreator<DB>, rows: Rows<'telemetry_devices'>) =>
  creator(db)
    .insertInto('telemetry_devices')
    .values(rows)
    .onConflict((oc) => oc.doNothing());

function lockKey(channel: string): number {
  // 52 bits of SHA-256: a safe integer, and distinct channels practically never share a lock.
  return Number.parseInt(
    createHash('sha256').update(`telemetry\u0000${channel}`).digest('hex').slice(0, 13),
    16,
  );
}

function* chunks<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** The step window a row falls in (integer division on both dialects), or null for the whole range. */
function bucketExpression(stepSec: number | undefined): RawBuilder<number | null> {
  if (stepSec === undefined) return sql<number | null>`null`;
  const step = sql.lit(Math.floor(stepSec));
  return sql<number | null>`(window_start / ${step}) * ${step}`;
}
