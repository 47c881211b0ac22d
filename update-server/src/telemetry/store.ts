import { createHash } from 'node:crypto';
import type { TelemetryBatch } from '@edgeship/protocol';
import { type Insertable, type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import type { Database, DialectName } from '../storage/schema.ts';
import {
  type AggregateKey,
  type AggregateValues,
  batchDeltas,
  batchInferences,
  emptyPipeline,
  keyString,
  mergeValues,
} from './aggregate.ts';

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
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: DialectName,
  ) {}

  /** `afterWrite` runs in the same transaction with the indexes of the accepted batches. */
  async ingest(
    batches: TelemetryBatch[],
    windowStart: number,
    cap: DeviceCap,
    receivedAt: string,
    afterWrite?: (trx: Transaction<Database>, accepted: number[]) => Promise<void>,
  ): Promise<IngestOutcome[]> {
    return this.db.transaction().execute(async (trx) => {
      const channels = [...new Set(batches.map((b) => `${b.app}\u0000${b.channel}`))].sort();
      if (this.dialect === 'postgres') {
        for (const channel of channels)
          await sql`select pg_advisory_xact_lock(${lockKey(channel)})`.execute(trx);
      }
      const outcomes = await this.classify(trx, batches, windowStart, cap);
      const accepted = batches.filter((_, i) => outcomes[i] === 'accepted');
      if (accepted.length === 0) return outcomes;
      await this.insertBatches(trx, accepted, windowStart, receivedAt);
      await this.addDeviceWindows(trx, accepted, windowStart);
      await this.addDevices(trx, accepted, windowStart);
      await this.addAggregates(trx, accepted, windowStart);
      await afterWrite?.(
        trx,
        outcomes.flatMap((o, i) => (o === 'accepted' ? [i] : [])),
      );
      return outcomes;
    });
  }

  /** Duplicates (seen before, or earlier in this group) and batches over their device's cap. */
  private async classify(
    trx: Transaction<Database>,
    batches: TelemetryBatch[],
    windowStart: number,
    cap: DeviceCap,
  ): Promise<IngestOutcome[]> {
    const seen = new Set<string>();
    for (const ids of chunks(
      batches.map((b) => b.batchId),
      ROWS_PER_STATEMENT,
    )) {
      const found = await trx
        .selectFrom('telemetry_batches')
        .select('batch_id')
        .where('batch_id', 'in', ids)
        .execute();
      for (const row of found) seen.add(row.batch_id);
    }
    const used = new Map<string, { batches: number; inferences: number }>();
    for (const [channel, group] of groupBy(batches, (b) => `${b.app}\u0000${b.channel}`)) {
      const [app, ch] = channel.split('\u0000') as [string, string];
      for (const devices of chunks([...new Set(group.map((b) => b.deviceId))], ROWS_PER_STATEMENT)) {
        const rows = await trx
          .selectFrom('telemetry_device_windows')
          .select(['device_id', 'batches', 'inferences'])
          .where('window_start', '=', windowStart)
          .where('app', '=', app)
          .where('channel', '=', ch)
          .where('device_id', 'in', devices)
          .execute();
        for (const r of rows) {
          used.set(`${channel}\u0000${r.device_id}`, {
            batches: num(r.batches),
            inferences: num(r.inferences),
          });
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

  private async insertBatches(trx: Transaction<Database>, batches: TelemetryBatch[], w: number, at: string) {
    for (const part of chunks(batches, ROWS_PER_STATEMENT)) {
      await trx
        .insertInto('telemetry_batches')
        .values(
          part.map((b) => ({
            batch_id: b.batchId,
            device_id: b.deviceId,
            app: b.app,
            channel: b.channel,
            window_start: w,
            records: b.records.length,
            inferences: batchInferences(b),
            dropped: b.dropped,
            received_at: at,
          })),
        )
        .execute();
    }
  }

  private async addDeviceWindows(trx: Transaction<Database>, batches: TelemetryBatch[], w: number) {
    const sums = new Map<
      string,
      { app: string; channel: string; device_id: string; batches: number; inferences: number }
    >();
    for (const b of batches) {
      const k = `${b.app}\u0000${b.channel}\u0000${b.deviceId}`;
      const row = sums.get(k) ?? {
        app: b.app,
        channel: b.channel,
        device_id: b.deviceId,
        batches: 0,
        inferences: 0,
      };
      row.batches += 1;
      row.inferences += batchInferences(b);
      sums.set(k, row);
    }
    for (const part of chunks([...sums.values()], ROWS_PER_STATEMENT)) {
      await trx
        .insertInto('telemetry_device_windows')
        .values(part.map((r) => ({ ...r, window_start: w })))
        .onConflict((oc) =>
          oc.columns(['window_start', 'app', 'channel', 'device_id']).doUpdateSet((eb) => ({
            batches: eb('telemetry_device_windows.batches', '+', eb.ref('excluded.batches')),
            inferences: eb('telemetry_device_windows.inferences', '+', eb.ref('excluded.inferences')),
          })),
        )
        .execute();
    }
  }

  private async addDevices(trx: Transaction<Database>, batches: TelemetryBatch[], w: number) {
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
    for (const part of chunks([...rows.values()], ROWS_PER_STATEMENT)) {
      await trx
        .insertInto('telemetry_devices')
        .values(part)
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
  }

  private async addAggregates(trx: Transaction<Database>, batches: TelemetryBatch[], w: number) {
    const deltas = new Map<string, [AggregateKey, AggregateValues]>();
    for (const batch of batches) {
      for (const [id, [key, values]] of batchDeltas(batch, w)) {
        const prev = deltas.get(id);
        if (prev) mergeValues(prev[1], values);
        else deltas.set(id, [key, values]);
      }
    }
    const existing = new Map<string, AggregateValues>();
    for (const [channel] of groupBy(batches, (b) => `${b.app}\u0000${b.channel}`)) {
      const [app, ch] = channel.split('\u0000') as [string, string];
      const rows = await trx
        .selectFrom('telemetry_aggregates')
        .selectAll()
        .where('window_start', '=', w)
        .where('app', '=', app)
        .where('channel', '=', ch)
        .execute();
      for (const row of rows) {
        const [key, values] = fromRow(row);
        existing.set(keyString(key), values);
      }
    }
    const inserts: Insertable<Database['telemetry_aggregates']>[] = [];
    for (const [id, [key, delta]] of deltas) {
      const prev = existing.get(id);
      if (!prev) {
        inserts.push(toRow(key, delta));
        continue;
      }
      const { app, channel, model, version, backend, role, window_start, ...set } = toRow(
        key,
        mergeValues(prev, delta),
      );
      await trx
        .updateTable('telemetry_aggregates')
        .set(set)
        .where('app', '=', app)
        .where('channel', '=', channel)
        .where('model', '=', model)
        .where('window_start', '=', window_start)
        .where('version', '=', version)
        .where('backend', '=', backend)
        .where('role', '=', role)
        .execute();
    }
    for (const part of chunks(inserts, ROWS_PER_STATEMENT / 4)) {
      await trx.insertInto('telemetry_aggregates').values(part).execute();
    }
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
    return rows.map(fromRow);
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

function fromRow(row: RowOut): [AggregateKey, AggregateValues] {
  return [
    {
      app: row.app,
      channel: row.channel,
      model: row.model,
      version: row.version,
      backend: row.backend,
      role: row.role as 'active' | 'shadow',
      windowStart: num(row.window_start),
    },
    {
      batches: num(row.batches),
      inferences: num(row.inferences),
      errors: num(row.errors),
      errorsByCode: JSON.parse(row.errors_by_code),
      latency: JSON.parse(row.latency),
      loadMsSum: Number(row.load_ms_sum),
      loadCount: num(row.load_count),
      downloadBytes: num(row.download_bytes),
      downloadMsSum: Number(row.download_ms_sum),
      features: JSON.parse(row.features),
      shadow: JSON.parse(row.shadow),
      pipeline: { ...emptyPipeline(), ...JSON.parse(row.pipeline ?? '{}') },
    },
  ];
}

interface RowOut {
  app: string;
  channel: string;
  model: string;
  version: string;
  backend: string;
  role: string;
  window_start: number | string;
  batches: number | string;
  inferences: number | string;
  errors: number | string;
  errors_by_code: string;
  latency: string;
  load_ms_sum: number;
  load_count: number | string;
  download_bytes: number | string;
  download_ms_sum: number;
  features: string;
  shadow: string;
  pipeline?: string;
}

function toRow(key: AggregateKey, v: AggregateValues) {
  return {
    app: key.app,
    channel: key.channel,
    model: key.model,
    version: key.version,
    backend: key.backend,
    role: key.role,
    window_start: key.windowStart,
    batches: v.batches,
    inferences: v.inferences,
    errors: v.errors,
    errors_by_code: JSON.stringify(v.errorsByCode),
    latency: JSON.stringify(v.latency),
    load_ms_sum: v.loadMsSum,
    load_count: v.loadCount,
    download_bytes: v.downloadBytes,
    download_ms_sum: v.downloadMsSum,
    features: JSON.stringify(v.features),
    shadow: JSON.stringify(v.shadow),
    pipeline: JSON.stringify(v.pipeline),
  } satisfies Insertable<Database['telemetry_aggregates']>;
}

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

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

/** The step window a row falls in (integer division on both dialects), or null for the whole range. */
function bucketExpression(stepSec: number | undefined): RawBuilder<number | null> {
  if (stepSec === undefined) return sql<number | null>`null`;
  const step = sql.lit(Math.floor(stepSec));
  return sql<number | null>`(window_start / ${step}) * ${step}`;
}
