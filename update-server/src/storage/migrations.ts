import {
  type ColumnDataType,
  type ColumnDefinitionBuilder,
  type Expression,
  type Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  sql,
} from 'kysely';
import type { DialectName } from './schema.ts';

/**
 * Schema migrations as code, applied in name order at open. Append new ones with a larger name
 * ('0002_telemetry', ...); never edit one that has shipped, a database may already have run it.
 * Each takes the dialect, so one migration can spell a type both ways (identity, blob, collation).
 */
export type DialectMigration = (dialect: DialectName) => Migration;

export interface MigrateOptions {
  /** PostgreSQL schema of the migration bookkeeping tables (see openStorage). */
  schema?: string;
  log?: (msg: string) => void;
  /** Stop after this migration (a test of the next one builds the schema it starts from). */
  to?: string;
}

/**
 * Brings the database to the latest migration. Safe with several processes on one PostgreSQL:
 * Kysely's migrator holds a session advisory lock (pg_advisory_lock) while it reads the applied
 * list and runs the rest in one transaction, so the second process waits, then finds nothing to do.
 */
export async function migrateToLatest(
  // Migrations predate the schema they build, so they see no table types.
  // biome-ignore lint/suspicious/noExplicitAny: Kysely<Database> is not assignable to Kysely<unknown>.
  db: Kysely<any>,
  dialect: DialectName,
  opts: MigrateOptions = {},
): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: providerFor(dialect),
    ...(opts.schema ? { migrationTableSchema: opts.schema } : {}),
  });
  const { error, results } = await (opts.to ? migrator.migrateTo(opts.to) : migrator.migrateToLatest());
  for (const result of results ?? []) {
    if (result.status === 'Success') opts.log?.(`storage: applied migration ${result.migrationName}`);
  }
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`storage: migration ${failed ?? '(setup)'} failed: ${describe(error)}`, { cause: error });
  }
}

function providerFor(dialect: DialectName): MigrationProvider {
  return {
    async getMigrations() {
      return Object.fromEntries(Object.entries(MIGRATIONS).map(([name, make]) => [name, make(dialect)]));
    },
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The steps a migration is written in, so that each names only its tables, columns and indexes.
 * A column is `name type [null | pk | unique]`, NOT NULL unless marked `null`. Types: `text` is in
 * byte order ("C" on PostgreSQL, as SQLite's BINARY: lists sort the same on both dialects),
 * `plain` in the database's collation; `bytes` is bytea or blob; `double` is double precision;
 * `identity` is an id that only grows (AUTOINCREMENT never reuses one, unlike a bare rowid).
 */
interface Steps {
  /**
   * `spec`: a line `name` or `name (key columns)` (a composite primary key, named `<name>_pk`),
   * then the columns, separated by commas over as many lines as they take.
   */
  table(spec: string): Promise<void>;
  index(name: string, table: string, columns: string[]): Promise<void>;
  /** One more column; `defaultTo` fills the rows already there. */
  column(table: string, column: string, defaultTo?: string | number): Promise<void>;
  /** Moves rows between tables: one statement per dialect (the two spell JSON apart). */
  copy(statement: Record<DialectName, string>): Promise<void>;
  dropTable(table: string): Promise<void>;
}

function migration(up: (steps: Steps) => Promise<void>): DialectMigration {
  return (dialect) => ({ up: (db: Kysely<unknown>) => up(steps(db, dialect)) });
}

function steps(db: Kysely<unknown>, dialect: DialectName): Steps {
  const pg = dialect === 'postgres';
  // Kysely takes a data type as a name or an expression (sql`...`).
  const types: Record<string, ColumnDataType | Expression<unknown>> = {
    text: pg ? sql`text collate "C"` : sql`text`,
    plain: 'text',
    bigint: 'bigint',
    integer: 'integer',
    double: 'double precision',
    bytes: pg ? 'bytea' : 'blob',
  };
  const parse = (spec: string) => {
    const [name = '', type = '', flag] = spec.trim().split(/\s+/);
    const build = (c: ColumnDefinitionBuilder) =>
      flag === 'null'
        ? c
        : flag === 'pk'
          ? c.primaryKey()
          : flag === 'unique'
            ? c.notNull().unique()
            : c.notNull();
    return { name, type, build };
  };
  return {
    async table(spec) {
      const [head = '', ...lines] = spec.split('\n');
      const [, name, key] = /^(\w+)(?: \(([\w, ]+)\))?$/.exec(head) ?? [];
      if (!name) throw new Error(`storage: bad table spec ${head}`);
      let table = db.schema.createTable(name);
      for (const column of lines.join(' ').split(',').map(parse)) {
        if (column.type === 'identity') {
          table = pg
            ? table.addColumn(column.name, 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
            : table.addColumn(column.name, 'integer', (c) => c.primaryKey().autoIncrement());
        } else {
          table = table.addColumn(column.name, types[column.type]!, column.build);
        }
      }
      await (key ? table.addPrimaryKeyConstraint(`${name}_pk`, key.split(', ') as never) : table).execute();
    },
    async index(name, table, columns) {
      await db.schema.createIndex(name).on(table).columns(columns).execute();
    },
    async column(table, spec, defaultTo) {
      const { name, type, build } = parse(spec);
      await db.schema
        .alterTable(table)
        .addColumn(name, types[type]!, (c) =>
          defaultTo === undefined ? build(c) : build(c).defaultTo(defaultTo),
        )
        .execute();
    },
    async copy(statement) {
      await sql.raw(statement[dialect]).execute(db);
    },
    async dropTable(table) {
      await db.schema.dropTable(table).execute();
    },
  };
}

const registryTables = migration(async (s) => {
  await s.table(`releases (model, version)
    model text, version text, format text, stage text, signed text, total_bytes bigint, metrics text,
    lineage text, model_card text, created_by text, created_at text`);
  await s.table(`channel_models (app, channel, model)
    app text, channel text, model text, production text null, previous_production text null,
    updated_at text`);
  await s.table(`channels (app, channel)
    app text, channel text, created_at text`);
  await s.table(`rollouts
    id text pk, app text, channel text, model text, release text, control text null, mode text,
    share_bps integer, salt text, state text, reason text null, created_by text, created_at text,
    updated_at text`);
  await s.index('rollouts_app_channel_model', 'rollouts', ['app', 'channel', 'model']);
  // Append-only: ids only grow.
  await s.table(`audit
    id identity, at text, actor text, action text, app text null, channel text null, model text null,
    details text`);
  await s.table(`manifests (app, channel, version)
    app text, channel text, version integer, body text, etag text, created_at text`);
  await s.table(`tokens
    id text pk, name text, role text, hash text unique, created_at text, expires_at text null,
    revoked_at text null`);
  await s.table(`chunks
    sha256 text pk, size integer, bytes bytes`);
});

/**
 * Telemetry (update-server/src/telemetry): de-duplication keys, per-device caps, and aggregates per
 * release, backend, role and time window. Windows are epoch seconds (integers sort and bucket the
 * same on both dialects); histograms and per-bin counts are JSON text merged by the writer.
 */
const telemetryTables = migration(async (s) => {
  await s.table(`telemetry_batches
    batch_id text pk, device_id text, app text, channel text, window_start bigint, records integer,
    inferences bigint, dropped bigint, received_at text`);
  await s.index('telemetry_batches_window', 'telemetry_batches', ['app', 'channel', 'window_start']);
  await s.table(`telemetry_device_windows (window_start, app, channel, device_id)
    app text, channel text, device_id text, window_start bigint, batches integer, inferences bigint`);
  await s.table(`telemetry_devices (app, channel, model, window_start, version, role, device_id)
    app text, channel text, model text, version text, role text, window_start bigint, device_id text`);
  await s.table(`telemetry_aggregates (app, channel, model, window_start, version, backend, role)
    app text, channel text, model text, version text, backend text, role text, window_start bigint,
    batches bigint, inferences bigint, errors bigint, errors_by_code text, latency text,
    load_ms_sum double, load_count bigint, download_bytes bigint, download_ms_sum double,
    features text, shadow text`);
});

/**
 * The pruner (telemetry/prune.ts) deletes by window_start across all apps and channels; without
 * these it would scan whole tables to find (or fail to find) rows past their retention.
 * telemetry_device_windows needs none: its primary key starts with window_start.
 */
const telemetryRetentionIndexes = migration(async (s) => {
  for (const table of ['telemetry_batches', 'telemetry_devices', 'telemetry_aggregates']) {
    await s.index(`${table}_age`, table, ['window_start']);
  }
});

/**
 * What the canary analysis may count (update-server/src/canary/evidence.ts): every install the
 * server has seen, when and from which network, and per rollout, arm and install the numbers that
 * passed the bucket, first-seen and cap checks.
 */
const canaryEvidenceTables = migration(async (s) => {
  await s.table(`telemetry_installs
    device_id text pk, prefix text, first_seen_ms bigint, last_seen_ms bigint`);
  await s.index('telemetry_installs_age', 'telemetry_installs', ['last_seen_ms']);
  await s.table(`canary_evidence (rollout_id, arm, device_id)
    rollout_id text, arm text, device_id text, prefix text, inferences bigint, errors bigint,
    latency text, features text`);
  await s.index('canary_evidence_prefix', 'canary_evidence', ['rollout_id', 'arm', 'prefix']);
});

/** Which kind of device each install is (protocol segments), so canary analysis can split by it. */
const canarySegments = migration((s) => s.column('canary_evidence', 'segment plain null'));

/**
 * The canary monitor's last verdict per rollout, so that every process (not only the leader that
 * judged) can show it, and a new leader knows which shadow decision was already announced.
 */
const canaryVerdicts = migration((s) =>
  s.table(`canary_verdicts (rollout_id, kind)
    rollout_id text, kind text, decision text, verdict plain, judged_at plain`),
);

/** The update pipeline's sums per aggregate (downloads, update failures, fallbacks: JSON). */
const telemetryPipeline = migration((s) => s.column('telemetry_aggregates', 'pipeline plain', '{}'));

/** Who approved a release for a channel and when, and each channel's promotion policy. */
const releaseApprovals = migration(async (s) => {
  await s.table(`release_approvals (app, channel, model, version)
    app text, channel text, model text, version text, approver plain, approved_at plain`);
  await s.table(`channel_policies (app, channel)
    app text, channel text, policy plain, updated_by plain, updated_at plain`);
});

/** The segments a rollout leaves out (canary analysis under a channel's exclude policy), as JSON. */
const rolloutExclusions = migration((s) => s.column('rollouts', 'excluded_segments plain', '[]'));

/**
 * Production alerts (thresholds per channel, and one row per open or closed episode, so a restart
 * or another process never announces an episode twice) and rollout schedules (stage by stage).
 */
const alertsAndSchedules = migration(async (s) => {
  await s.table(`alert_configs (app, channel)
    app text, channel text, config plain, updated_by plain, updated_at plain`);
  await s.table(`alert_episodes (app, channel, model, rule)
    app text, channel text, model text, rule text, episode plain, state plain, version plain,
    fired_at plain, resolved_at plain null, evidence plain`);
  await s.table(`rollout_schedules
    rollout_id text pk, stages plain, min_stage_ms bigint, min_samples bigint, stage integer,
    stage_started_at plain, stage_start_samples bigint, state plain, note plain null,
    created_by plain, updated_at plain`);
});

/** Feedback and outcomes from apps per aggregate (confusion counts, outcome sums: JSON). */
const telemetryQuality = migration((s) => s.column('telemetry_aggregates', 'quality plain', '{}'));

/** Experiments (a design on top of a rollout) and each install's feedback and outcomes per arm. */
const experiments = migration(async (s) => {
  await s.table(`experiments
    rollout_id text pk, spec plain, created_at plain`);
  await s.column('canary_evidence', 'quality plain', '{}');
});

/**
 * A change number per evidence row (canary/evidence.ts): the rollout's rows written by one ingest
 * transaction get the rollout's next number, so that the monitor reads only the rows changed since
 * its last look (indexed by rollout and number) instead of every row at every look.
 */
const canaryEvidenceSeq = migration(async (s) => {
  await s.column('canary_evidence', 'seq bigint', 0);
  await s.index('canary_evidence_seq', 'canary_evidence', ['rollout_id', 'seq']);
});

/** A multi-arm rollout's treatment arms (an experiment's), as JSON; '[]': one arm. */
const rolloutArms = migration((s) => s.column('rollouts', 'arms plain', '[]'));

/** Webhook events stored before they are sent, so none is lost to a crash or a receiver down. */
const webhookDeliveries = migration(async (s) => {
  await s.table(`webhook_deliveries
    id text pk, event plain, body plain, created_ms bigint, attempts integer, next_attempt_ms bigint,
    delivered_ms bigint null, gave_up_ms bigint null, last_error plain null`);
  await s.index('webhook_deliveries_due', 'webhook_deliveries', ['next_attempt_ms']);
});
/** A schedule's segment hold (canary/schedule.ts): its policy and state, JSON ('{}': the defaults). */
const scheduleSegmentHold = migration((s) => s.column('rollout_schedules', 'segment_hold plain', '{}'));

/**
 * One row per device and window instead of one per device, window and release: the releases a
 * device ran in a window move into its `telemetry_device_windows` row (a JSON array of
 * [model, version, role], written whole by ingest, which reads the row anyway for the per-device
 * cap), and `telemetry_devices` is emptied (dropped by a later release). Its rows were one per record of every batch, each on a random
 * page of its primary key (54% of the pages the fleet simulator's commits wrote at 10,000 devices).
 * A device row whose window row is gone (a prune interrupted between the two tables: both past
 * their retention) is deleted with the rest.
 */
const deviceWindowReleases = migration(async (s) => {
  await s.column('telemetry_device_windows', 'releases plain', '[]');
  const join = `w.app = d.app and w.channel = d.channel and w.window_start = d.window_start
    and w.device_id = d.device_id`;
  await s.copy({
    sqlite: `update telemetry_device_windows as w set releases = d.releases
      from (select app, channel, window_start, device_id,
          json_group_array(json_array(model, version, role)) as releases
        from telemetry_devices group by app, channel, window_start, device_id) as d
      where ${join}`,
    postgres: `update telemetry_device_windows as w set releases = d.releases
      from (select app, channel, window_start, device_id,
          json_agg(json_build_array(model, version, role))::text as releases
        from telemetry_devices group by app, channel, window_start, device_id) as d
      where ${join}`,
  });
  // Emptied, not dropped: in a rolling upgrade on PostgreSQL, processes of the previous release
  // still ingest into it until they are replaced (dropping it would fail their every batch). Its
  // rows are copied above; what those processes add meanwhile is lost to device counts (minutes
  // at most). A later release drops the table.
  await s.copy({ sqlite: 'delete from telemetry_devices', postgres: 'delete from telemetry_devices' });
});

export const MIGRATIONS: Readonly<Record<string, DialectMigration>> = {
  '0001_registry': registryTables,
  '0002_telemetry': telemetryTables,
  '0003_telemetry_retention': telemetryRetentionIndexes,
  '0004_canary_evidence': canaryEvidenceTables,
  '0005_canary_segments': canarySegments,
  '0006_canary_verdicts': canaryVerdicts,
  '0007_telemetry_pipeline': telemetryPipeline,
  '0008_release_approvals': releaseApprovals,
  '0009_rollout_exclusions': rolloutExclusions,
  '0010_alerts_schedules': alertsAndSchedules,
  '0011_telemetry_quality': telemetryQuality,
  '0012_experiments': experiments,
  '0013_canary_evidence_seq': canaryEvidenceSeq,
  '0014_rollout_arms': rolloutArms,
  '0015_webhook_deliveries': webhookDeliveries,
  '0016_schedule_segment_hold': scheduleSegmentHold,
  '0017_device_window_releases': deviceWindowReleases,
};
