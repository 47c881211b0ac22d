import type { TelemetryBatch } from '@edgeship/protocol';
import { type Insertable, type RawBuilder, sql } from 'kysely';
import type { Database, DialectName } from '../storage/schema.ts';
import {
  type AggregateKey,
  type AggregateValues,
  addBatchDeltas,
  emptyPipeline,
  emptyValues,
  keyString,
  mergeValues,
} from './aggregate.ts';
import type { IngestTransaction } from './store.ts';

/** Channels whose current window is kept in memory (each a handful of rows, one per release key). */
const MAX_CHANNELS = 4096;
// Rows per multi-row INSERT: 21 columns each, far below SQLite's 32,766 parameters.
const ROWS_PER_INSERT = 100;

const num = (v: number | string | bigint | null | undefined): number => (v == null ? 0 : Number(v));

interface WindowRows {
  windowStart: number;
  rows: Map<string, AggregateValues>;
}

/**
 * Adds a group's records into `telemetry_aggregates`, keeping each channel's current window in
 * memory: the rows this process last wrote. A group then costs one UPDATE per release key it
 * touches, and no read of the window's rows (each a few JSON columns to parse) per group.
 *
 * The kept row is trusted only as far as the database agrees: each UPDATE is conditional on the
 * row's `batches` being what it was when kept. Every write adds at least 1 to `batches` of each
 * row it touches, so a row another process (PostgreSQL) changed since, or the pruner deleted,
 * updates nothing; that row is read again under the ingest transaction's lock and merged then.
 * A key not kept (a new release key, a new window, a restarted process) reads the window as
 * before. All kept rows of a channel are updated by one statement (one round trip on PostgreSQL,
 * one prepared statement on SQLite, whatever the number of keys), which returns the keys it did
 * update; only the others take the slow path. What is kept changes in place during the transaction; when it does not commit, the
 * caller calls `forget` for its channels, so memory never holds numbers the database does not.
 */
export class AggregateRows {
  private readonly windows = new Map<string, WindowRows>();

  constructor(private readonly dialect: DialectName) {}

  /** Runs inside the ingest transaction, under its lock (telemetry/store.ts). */
  async add(trx: IngestTransaction, batches: TelemetryBatch[], windowStart: number): Promise<void> {
    const plan = await this.plan(trx, batches, windowStart);
    await this.finish(trx, plan, await this.updateKept(trx, plan));
  }

  /**
   * The first half of `add`: each channel's kept window (read if not kept), the group's deltas
   * merged into it, and the conditional updates that `keptUpdate` writes. The caller runs that
   * statement (alone, `add`, or as part of another, telemetry/store.ts on PostgreSQL), then
   * `finish` with the keys it updated.
   */
  async plan(trx: IngestTransaction, batches: TelemetryBatch[], windowStart: number): Promise<AggregatePlan> {
    const perChannel = new Map<string, Map<string, [AggregateKey, AggregateValues]>>();
    const counted = new Map<string, TelemetryBatch>();
    for (const batch of batches) {
      const channel = `${batch.app}\u0000${batch.channel}`;
      let deltas = perChannel.get(channel);
      if (!deltas) {
        deltas = new Map<string, [AggregateKey, AggregateValues]>();
        perChannel.set(channel, deltas);
      }
      addBatchDeltas(deltas, batch, windowStart, counted);
    }
    const plan: AggregatePlan = { channels: [], json: '[]' };
    for (const [channel, deltas] of perChannel)
      plan.channels.push(await this.planChannel(trx, channel, windowStart, deltas));
    const updates = plan.channels.flatMap((c) => c.updates);
    // Every channel's updates in one statement: it matches each row on its whole key.
    plan.json = JSON.stringify(updates.map((u) => ({ ...toRow(u.key, u.values), expected: u.expected })));
    return plan;
  }

  /** The statement that writes a plan's kept rows (its text is fixed; the rows are one JSON parameter). */
  keptUpdate(plan: AggregatePlan): RawBuilder<KeyRow> {
    return this.dialect === 'postgres' ? updateKeptPg(plan.json) : updateKeptSqlite(plan.json);
  }

  /** The second half of `add`, given the rows the plan's statement returned. */
  async finish(trx: IngestTransaction, plan: AggregatePlan, rows: KeyRow[]): Promise<void> {
    const updated = new Set(
      rows.map((r) =>
        keyString({ ...r, role: r.role as AggregateKey['role'], windowStart: num(r.window_start) }),
      ),
    );
    for (const { kept, updates, inserts } of plan.channels) {
      for (const { id, key, delta } of updates) {
        if (updated.has(id)) continue;
        // Changed elsewhere since kept (or pruned): merge into what the database holds now.
        const now = await this.readRow(trx, key);
        const merged = mergeValues(now ?? emptyValues(), delta);
        kept.rows.set(id, merged);
        if (now) await this.update(trx, key, merged);
        else inserts.push(toRow(key, merged));
      }
      for (let i = 0; i < inserts.length; i += ROWS_PER_INSERT) {
        await trx
          .insertInto('telemetry_aggregates')
          .values(inserts.slice(i, i + ROWS_PER_INSERT))
          .execute();
      }
    }
  }

  /** Drops what is kept of these channels (their transaction did not commit). */
  forget(channels: Iterable<string>): void {
    for (const channel of channels) this.windows.delete(channel);
  }

  private async planChannel(
    trx: IngestTransaction,
    channel: string,
    windowStart: number,
    deltas: Map<string, [AggregateKey, AggregateValues]>,
  ): Promise<ChannelPlan> {
    let kept = this.windows.get(channel);
    if (!kept || kept.windowStart !== windowStart || [...deltas.keys()].some((id) => !kept!.rows.has(id))) {
      kept = { windowStart, rows: await this.readWindow(trx, channel, windowStart) };
      this.windows.delete(channel); // re-inserted last: the oldest channel goes first when full
      if (this.windows.size >= MAX_CHANNELS) this.windows.delete(this.windows.keys().next().value!);
      this.windows.set(channel, kept);
    }
    const inserts: Insertable<Database['telemetry_aggregates']>[] = [];
    const updates: KeptUpdate[] = [];
    for (const [id, [key, delta]] of deltas) {
      const prev = kept.rows.get(id);
      if (!prev) {
        // Not in the window read just now, under the transaction's lock: a new row.
        inserts.push(toRow(key, delta));
        kept.rows.set(id, delta);
        continue;
      }
      const expected = prev.batches;
      updates.push({ id, key, delta, expected, values: mergeValues(prev, delta) });
    }
    return { kept, updates, inserts };
  }

  /** Writes the kept rows' new values, each only if its `batches` still is what was kept. */
  private async updateKept(trx: IngestTransaction, plan: AggregatePlan): Promise<KeyRow[]> {
    if (plan.channels.every((c) => c.updates.length === 0)) return [];
    return (await this.keptUpdate(plan).execute(trx)).rows;
  }

  /** Writes a row's new values (the slow path, after reading it under the lock). */
  private async update(trx: IngestTransaction, key: AggregateKey, values: AggregateValues): Promise<void> {
    const { app, channel, model, version, backend, role, window_start, ...set } = toRow(key, values);
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

  private async readWindow(
    trx: IngestTransaction,
    channel: string,
    windowStart: number,
  ): Promise<Map<string, AggregateValues>> {
    const [app, ch] = channel.split('\u0000') as [string, string];
    const rows = await trx
      .selectFrom('telemetry_aggregates')
      .selectAll()
      .where('window_start', '=', windowStart)
      .where('app', '=', app)
      .where('channel', '=', ch)
      .execute();
    const out = new Map<string, AggregateValues>();
    for (const row of rows) {
      const [key, values] = aggregateFromRow(row);
      out.set(keyString(key), values);
    }
    return out;
  }

  private async readRow(trx: IngestTransaction, key: AggregateKey): Promise<AggregateValues | null> {
    const row = await trx
      .selectFrom('telemetry_aggregates')
      .selectAll()
      .where('app', '=', key.app)
      .where('channel', '=', key.channel)
      .where('model', '=', key.model)
      .where('window_start', '=', key.windowStart)
      .where('version', '=', key.version)
      .where('backend', '=', key.backend)
      .where('role', '=', key.role)
      .executeTakeFirst();
    return row ? aggregateFromRow(row)[1] : null;
  }
}

interface KeptUpdate {
  id: string;
  key: AggregateKey;
  delta: AggregateValues;
  /** The row's `batches` as kept: the update applies only if the database still says so. */
  expected: number;
  /** The kept values with the delta merged in (the kept object itself, changed in place). */
  values: AggregateValues;
}

interface ChannelPlan {
  kept: WindowRows;
  updates: KeptUpdate[];
  /** Rows new to the window (more join them in `finish`, rows found gone). */
  inserts: Insertable<Database['telemetry_aggregates']>[];
}

/** A group's additions to the aggregates, between `plan` and `finish` (see AggregateRows). */
export interface AggregatePlan {
  channels: ChannelPlan[];
  /** Every kept row's new values and expected `batches`, the update statement's one parameter. */
  json: string;
}

/** The key columns the conditional update returns for each row it wrote. */
export type KeyRow = Pick<
  AggregateRowOut,
  'app' | 'channel' | 'model' | 'version' | 'backend' | 'role' | 'window_start'
>;

// The key and value columns an update writes; the conditional join on the key (both dialects).
const KEY_COLUMNS = ['app', 'channel', 'model', 'version', 'backend', 'role', 'window_start'];
const VALUE_COLUMNS = [
  'batches',
  'inferences',
  'errors',
  'errors_by_code',
  'latency',
  'load_ms_sum',
  'load_count',
  'download_bytes',
  'download_ms_sum',
  'features',
  'shadow',
  'pipeline',
  'quality',
];
const SET = sql.raw(VALUE_COLUMNS.map((c) => `${c} = v.${c}`).join(', '));
const MATCH = sql.raw(
  KEY_COLUMNS.map((c) => `t.${c} = v.${c}`)
    .concat('t.batches = v.expected')
    .join(' and '),
);

const updateKeptPg = (json: string): RawBuilder<KeyRow> => sql<KeyRow>`
  update telemetry_aggregates as t set ${SET}
  from json_to_recordset(${json}::json) as v(app text, channel text, model text, version text,
    backend text, role text, window_start bigint, expected bigint, batches bigint, inferences bigint,
    errors bigint, errors_by_code text, latency text, load_ms_sum double precision, load_count bigint,
    download_bytes bigint, download_ms_sum double precision, features text, shadow text,
    pipeline text, quality text)
  where ${MATCH}
  returning t.app, t.channel, t.model, t.version, t.backend, t.role, t.window_start`;

const SQLITE_FIELDS = sql.raw(
  [...KEY_COLUMNS, 'expected', ...VALUE_COLUMNS].map((c) => `value ->> '$.${c}' as ${c}`).join(', '),
);

// jsonb: each `->>` of a text JSON value parses the whole object again (20 fields per row); on
// the binary form it is a lookup. A group of 42 rows took 1.07 ms with json_each, 0.37 with jsonb_each.
const updateKeptSqlite = (json: string): RawBuilder<KeyRow> => sql<KeyRow>`
  update telemetry_aggregates as t set ${SET}
  from (select ${SQLITE_FIELDS} from jsonb_each(jsonb(${json}))) as v
  where ${MATCH}
  returning app, channel, model, version, backend, role, window_start`;

export interface AggregateRowOut {
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
  quality?: string;
}

export function aggregateFromRow(row: AggregateRowOut): [AggregateKey, AggregateValues] {
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
      quality: { confusion: {}, outcomes: {}, ...JSON.parse(row.quality ?? '{}') },
    },
  ];
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
    quality: JSON.stringify(v.quality),
  } satisfies Insertable<Database['telemetry_aggregates']>;
}
