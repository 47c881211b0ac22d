import { createHash } from 'node:crypto';
import type { TelemetryBatch } from '@edgeship/protocol';
import { type Insertable, type Kysely, type RawBuilder, type Selectable, sql } from 'kysely';
import { groupBy } from '../group-by.ts';
import type { Database, DialectName } from '../storage/schema.ts';
import { type AggregateKey, type AggregateValues, batchInferences } from './aggregate.ts';
import { AggregateRows, aggregateFromRow, type KeyRow } from './aggregate-rows.ts';
import {
  type DeviceWindowUse,
  deviceWindows,
  insertBatches,
  knownBatchIds,
  upsertDeviceWindows,
} from './sqlite-ingest.ts';

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

  /**
   * `afterWrite` runs in the same transaction with the indexes of the accepted batches, and on
   * PostgreSQL with what the duplicate read fetched for it in the same statement (IngestPrefetch).
   */
  async ingest(
    batches: TelemetryBatch[],
    windowStart: number,
    cap: DeviceCap,
    receivedAt: string,
    afterWrite?: (trx: IngestTransaction, accepted: number[], prefetched?: IngestPrefetch) => Promise<void>,
  ): Promise<IngestOutcome[]> {
    const channels = [...new Set(batches.map((b) => `${b.app}\u0000${b.channel}`))].sort();
    const body = async (trx: IngestTransaction) => {
      const { outcomes, prefetched, stored } = await this.classify(trx, batches, windowStart, cap);
      const accepted = batches.filter((_, i) => outcomes[i] === 'accepted');
      if (accepted.length === 0) return outcomes;
      await this.insertRows(trx, accepted, windowStart, receivedAt, stored);
      await afterWrite?.(
        trx,
        outcomes.flatMap((o, i) => (o === 'accepted' ? [i] : [])),
        prefetched,
      );
      return outcomes;
    };
    try {
      if (this.dialect !== 'postgres') return await this.db.transaction().execute(body);
      // BEGIN and the channels' advisory locks in one round trip (a simple query may hold several
      // statements; the keys are integers computed here), then as Kysely's transaction would.
      return await this.db.connection().execute(async (conn) => {
        const locks = channels.map((c) => `select pg_advisory_xact_lock(${lockKey(c)})`);
        try {
          // All inside the try (as Kysely's transaction does): a lock wait or a commit that fails
          // leaves no open transaction on the connection going back to the pool.
          await sql.raw(['begin', ...locks].join('; ')).execute(conn);
          const outcomes = await body(conn);
          await sql`commit`.execute(conn);
          return outcomes;
        } catch (error) {
          await sql`rollback`.execute(conn).catch(() => {});
          throw error;
        }
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
    trx: IngestTransaction,
    batches: TelemetryBatch[],
    windowStart: number,
    cap: DeviceCap,
  ): Promise<{ outcomes: IngestOutcome[]; prefetched?: IngestPrefetch; stored: Map<string, string> }> {
    let prefetched: IngestPrefetch | undefined;
    const seen = new Set<string>();
    const used = new Map<string, { batches: number; inferences: number }>();
    // What each device's row of this window holds already: its releases are rewritten whole.
    const stored = new Map<string, string>();
    const ids = batches.map((b) => b.batchId);
    const channels = groupBy(batches, (b) => `${b.app}\u0000${b.channel}`);
    const [only, ...more] = channels.keys();
    const devices = [...new Set(batches.map((b) => b.deviceId))];
    if (this.dialect === 'postgres' && only !== undefined && more.length === 0) {
      // One channel, one round trip: the known batch ids, the devices' use of this window, and
      // for the canary evidence writer the installs and the active canaries (IngestPrefetch). The
      // lists go as array parameters, so the statement's text (and its plan's shape) is the same
      // whatever the group's size. Not on SQLite: no round trip to save.
      const [app, ch] = only.split('\u0000') as [string, string];
      const { rows } = await classifyPg(ids, windowStart, app, ch, devices).execute(trx);
      prefetched = { installs: [], canaries: [] };
      for (const r of rows) {
        if (r.kind === 'batch') seen.add(r.id);
        else if (r.kind === 'device') {
          used.set(`${only}\u0000${r.id}`, { batches: num(r.a), inferences: num(r.b) });
          stored.set(`${only}\u0000${r.id}`, r.c!);
        } else if (r.kind === 'install')
          prefetched.installs.push({
            device_id: r.id,
            prefix: r.c!,
            first_seen_ms: num(r.a),
            last_seen_ms: num(r.b),
          });
        else prefetched.canaries.push(JSON.parse(r.c!) as PrefetchedRollout);
      }
    } else {
      // SQLite (telemetry/sqlite-ingest.ts), or a group of several channels on PostgreSQL.
      const sqlite = this.dialect !== 'postgres';
      for (const id of await (sqlite ? knownBatchIds : knownBatchIdsKysely)(trx, ids)) seen.add(id);
      for (const [channel, group] of channels) {
        const [app, ch] = channel.split('\u0000') as [string, string];
        const inChannel = [...new Set(group.map((b) => b.deviceId))];
        const read = sqlite ? deviceWindows : deviceWindowsKysely;
        for (const r of await read(trx, windowStart, app, ch, inChannel)) {
          used.set(`${channel}\u0000${r.device_id}`, {
            batches: num(r.batches),
            inferences: num(r.inferences),
          });
          stored.set(`${channel}\u0000${r.device_id}`, r.releases);
        }
      }
    }
    const outcomes = batches.map((batch): IngestOutcome => {
      if (seen.has(batch.batchId)) return 'duplicate';
      seen.add(batch.batchId);
      const deviceKey = `${batch.app}\u0000${batch.channel}\u0000${batch.deviceId}`;
      const so = used.get(deviceKey) ?? { batches: 0, inferences: 0 };
      const next = { batches: so.batches + 1, inferences: so.inferences + batchInferences(batch) };
      if (next.batches > cap.batchesPerWindow || next.inferences > cap.inferencesPerWindow) return 'capped';
      used.set(deviceKey, next);
      return 'accepted';
    });
    return { outcomes, prefetched, stored };
  }

  /**
   * The group's rows in `telemetry_batches` and `telemetry_device_windows` (summed per device, with
   * the releases it reported in the window), and its additions to `telemetry_aggregates`
   * (aggregate-rows.ts). `stored` is what the devices' rows of this window held, read by `classify`
   * in this transaction (under the channel's lock on PostgreSQL): their releases are written whole.
   * On
   * PostgreSQL the rows and the aggregates' conditional update are one statement (data-modifying
   * CTEs, each table's rows as one array parameter per column, `unnest`): every statement is a
   * round trip while the channel's lock is held, and a fixed text is planned in a fraction of a
   * multi-row VALUES list's time (hundreds of parameters per group).
   */
  private async insertRows(
    trx: IngestTransaction,
    batches: TelemetryBatch[],
    w: number,
    at: string,
    stored: Map<string, string>,
  ) {
    const batchRows = batchRowsOf(batches, w, at);
    const windowRows = deviceWindowRowsOf(batches, w, stored);
    if (this.dialect === 'postgres') {
      const plan = await this.aggregateRows.plan(trx, batches, w);
      const { rows } = await insertRowsPg(batchRows, windowRows, this.aggregateRows.keptUpdate(plan)).execute(
        trx,
      );
      await this.aggregateRows.finish(trx, plan, rows);
      return;
    }
    await insertBatches(trx, batchRows);
    await upsertDeviceWindows(trx, windowRows);
    await this.aggregateRows.add(trx, batches, w);
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
    const { rows } = await sql<{
      bucket: number | string | null;
      model: string;
      version: string;
      role: string;
      devices: number | string;
    }>`
      with released as (${this.released(filter)})
      select ${bucketExpression(stepSec)} as bucket, model, version, role,
        count(distinct device_id) as devices
      from released
      ${filter.model !== undefined ? sql`where model = ${filter.model}` : sql``}
      group by model, version, role${stepSec !== undefined ? sql`, 1` : sql``}`.execute(this.db);
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
    const { rows } = await sql<{
      model: string;
      device_id: string;
      window_start: number | string;
      version: string;
    }>`
      with released as (${this.released(filter)}),
      active as (
        select device_id, window_start, model, version from released
        where role = 'active' ${filter.model !== undefined ? sql`and model = ${filter.model}` : sql``}
      )
      select a.model, a.device_id, a.window_start, a.version
      from active as a
      join (select model, device_id, max(window_start) as last from active group by model, device_id) as l
        on a.model = l.model and a.device_id = l.device_id and a.window_start = l.last`.execute(this.db);
    return rows.map((r) => ({
      model: r.model,
      deviceId: r.device_id,
      windowStart: num(r.window_start),
      version: r.version,
    }));
  }

  /** Distinct devices that reported anything for a model (per step window when given). */
  async totalDevices(filter: AggregateFilter, stepSec?: number): Promise<Map<number | null, number>> {
    const { rows } = await sql<{ bucket: number | string | null; devices: number | string }>`
      with released as (${this.released(filter)})
      select ${bucketExpression(stepSec)} as bucket, count(distinct device_id) as devices
      from released
      where role = 'active' ${filter.model !== undefined ? sql`and model = ${filter.model}` : sql``}
      ${stepSec !== undefined ? sql`group by 1` : sql``}`.execute(this.db);
    return new Map(rows.map((r) => [r.bucket === null ? null : num(r.bucket), num(r.devices)]));
  }

  /**
   * The releases each device reported per window in the filter's range (its app, channel and
   * time; not its model or role), one row per device, window and release: `telemetry_device_windows`'
   * `releases` column (a JSON array of [model, version, role]) taken apart by the dialect's JSON
   * functions.
   */
  private released(filter: AggregateFilter): RawBuilder<unknown> {
    const [each, value] =
      this.dialect === 'postgres'
        ? [sql`cross join lateral json_array_elements(w.releases::json) as r(e)`, sql.ref('r.e')]
        : [sql`, json_each(w.releases) as r`, sql.ref('r.value')];
    return sql`
      select w.device_id, w.window_start, ${value} ->> 0 as model, ${value} ->> 1 as version,
        ${value} ->> 2 as role
      from telemetry_device_windows as w ${each}
      where w.app = ${filter.app} and w.channel = ${filter.channel} and w.window_start >= ${filter.since}
        ${filter.until !== undefined ? sql`and w.window_start < ${filter.until}` : sql``}`;
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
  stored: Map<string, string>,
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
      releases: Set<string>;
    }
  >();
  for (const b of batches) {
    const k = `${b.app}\u0000${b.channel}\u0000${b.deviceId}`;
    let row = sums.get(k);
    if (!row) {
      row = {
        app: b.app,
        channel: b.channel,
        device_id: b.deviceId,
        window_start: w,
        batches: 0,
        inferences: 0,
        releases: releaseSet(stored.get(k)),
      };
      sums.set(k, row);
    }
    row.batches += 1;
    row.inferences += batchInferences(b);
    for (const r of b.records) row.releases.add(JSON.stringify([r.model, r.version, r.role]));
  }
  return [...sums.values()].map(({ releases, ...row }) => ({ ...row, releases: releasesText(releases) }));
}

/**
 * A device window's releases as stored: a JSON array of [model, version, role], each once, in the
 * order of their JSON text (so the same set is always the same text).
 */
function releasesText(releases: Set<string>): string {
  return `[${[...releases].sort().join(',')}]`;
}

/** The stored releases of a device window as the JSON texts of its [model, version, role]. */
function releaseSet(text: string | undefined): Set<string> {
  if (!text) return new Set();
  return new Set((JSON.parse(text) as Array<[string, string, string]>).map((r) => JSON.stringify(r)));
}

type Rows<Table extends keyof Database> = Insertable<Database[Table]>[];

/** knownBatchIds (sqlite-ingest.ts) on any dialect, through Kysely. */
async function knownBatchIdsKysely(trx: IngestTransaction, ids: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const part of chunks(ids, ROWS_PER_STATEMENT)) {
    const found = await trx
      .selectFrom('telemetry_batches')
      .select('batch_id')
      .where('batch_id', 'in', part)
      .execute();
    for (const row of found) out.push(row.batch_id);
  }
  return out;
}

/** deviceWindows (sqlite-ingest.ts) on any dialect, through Kysely. */
async function deviceWindowsKysely(
  trx: IngestTransaction,
  windowStart: number,
  app: string,
  channel: string,
  devices: string[],
): Promise<DeviceWindowUse[]> {
  const out: DeviceWindowUse[] = [];
  for (const part of chunks(devices, ROWS_PER_STATEMENT)) {
    const rows = await trx
      .selectFrom('telemetry_device_windows')
      .select(['device_id', 'batches', 'inferences', 'releases'])
      .where('window_start', '=', windowStart)
      .where('app', '=', app)
      .where('channel', '=', channel)
      .where('device_id', 'in', part)
      .execute();
    for (const r of rows) out.push({ ...r, batches: num(r.batches), inferences: num(r.inferences) });
  }
  return out;
}

/** Each key's values across the rows, in order: one array parameter per column. */
function columns<R extends object, K extends keyof R>(rows: R[], keys: readonly K[]): Array<Array<R[K]>> {
  return keys.map((k) => rows.map((r) => r[k]));
}

type ClassifyRow = {
  kind: 'batch' | 'device' | 'install' | 'rollout';
  id: string;
  a: number | string;
  b: number | string;
  c: string | null;
};

/** The columns of an active canary rollout the evidence writer reads (canary/evidence.ts). */
export type PrefetchedRollout = Pick<
  Selectable<Database['rollouts']>,
  'id' | 'app' | 'channel' | 'model' | 'release' | 'control' | 'salt' | 'share_bps' | 'arms' | 'created_at'
>;

/** What the duplicate read also fetched for the evidence writer (PostgreSQL, one channel). */
export interface IngestPrefetch {
  /** The group's devices that are known installs (every device of the group was looked up). */
  installs: Array<
    Pick<Selectable<Database['telemetry_installs']>, 'device_id' | 'prefix'> & {
      first_seen_ms: number;
      last_seen_ms: number;
    }
  >;
  /** Rollouts with state active, mode canary, a share and a control release. */
  canaries: PrefetchedRollout[];
}

/** A transaction on the store's database (on PostgreSQL, one connection between BEGIN and COMMIT). */
export type IngestTransaction = Kysely<Database>;

const classifyPg = (
  ids: string[],
  windowStart: number,
  app: string,
  channel: string,
  devices: string[],
): RawBuilder<ClassifyRow> => sql<ClassifyRow>`
  select 'batch' as kind, batch_id as id, 0::bigint as a, 0::bigint as b, null::text as c
    from telemetry_batches where batch_id = any(${ids}::text[])
  union all
  select 'device', d.id, w.batches, w.inferences, w.releases from unnest(${devices}::text[]) as d(id)
    cross join lateral (
      select batches, inferences, releases from telemetry_device_windows
      where window_start = ${windowStart} and app = ${app} and channel = ${channel} and device_id = d.id
      offset 0
    ) as w
  union all
  select 'install', device_id, first_seen_ms, last_seen_ms, prefix from telemetry_installs
    where device_id = any(${devices}::text[])
  union all
  select 'rollout', id, 0, 0, json_build_object('id', id, 'app', app, 'channel', channel,
      'model', model, 'release', release, 'control', control, 'salt', salt, 'share_bps', share_bps,
      'arms', arms, 'created_at', created_at)::text
    from rollouts
    where state = 'active' and mode = 'canary' and share_bps > 0 and control is not null`;

const BATCH_COLUMNS = [
  'batch_id',
  'device_id',
  'app',
  'channel',
  'window_start',
  'records',
  'inferences',
  'dropped',
  'received_at',
] as const;
const WINDOW_COLUMNS = [
  'app',
  'channel',
  'device_id',
  'window_start',
  'batches',
  'inferences',
  'releases',
] as const;

function insertRowsPg(
  batchRows: Rows<'telemetry_batches'>,
  windowRows: Rows<'telemetry_device_windows'>,
  keptUpdate: RawBuilder<KeyRow>,
): RawBuilder<KeyRow> {
  const [b0, b1, b2, b3, b4, b5, b6, b7, b8] = columns(batchRows, BATCH_COLUMNS);
  const [w0, w1, w2, w3, w4, w5, w6] = columns(windowRows, WINDOW_COLUMNS);
  return sql<KeyRow>`
    with new_batches as (
      insert into telemetry_batches
        (batch_id, device_id, app, channel, window_start, records, inferences, dropped, received_at)
      select * from unnest(${b0}::text[], ${b1}::text[], ${b2}::text[], ${b3}::text[],
        ${b4}::bigint[], ${b5}::integer[], ${b6}::bigint[], ${b7}::bigint[], ${b8}::text[])
    ), new_device_windows as (
      insert into telemetry_device_windows as t
        (app, channel, device_id, window_start, batches, inferences, releases)
      select * from unnest(${w0}::text[], ${w1}::text[], ${w2}::text[], ${w3}::bigint[],
        ${w4}::integer[], ${w5}::bigint[], ${w6}::text[])
      on conflict (window_start, app, channel, device_id) do update
        set batches = t.batches + excluded.batches, inferences = t.inferences + excluded.inferences,
          releases = excluded.releases
    ), kept as (${keptUpdate})
    select * from kept`;
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

/** The step window a row falls in (integer division on both dialects), or null for the whole range. */
function bucketExpression(stepSec: number | undefined): RawBuilder<number | null> {
  if (stepSec === undefined) return sql<number | null>`null`;
  const step = sql.lit(Math.floor(stepSec));
  return sql<number | null>`(window_start / ${step}) * ${step}`;
}
