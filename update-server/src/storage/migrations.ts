import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import type { DialectName } from './schema.ts';

/**
 * Schema migrations as code, applied in name order at open. Append new ones with a larger name
 * ('0002_telemetry', ...); never edit one that has shipped, a database may already have run it.
 * Each takes the dialect, so one migration can spell a type both ways (identity, blob, collation).
 */
export type DialectMigration = (dialect: DialectName) => Migration;

export const MIGRATIONS: Readonly<Record<string, DialectMigration>> = {
  '0001_registry': registryTables,
  '0002_telemetry': telemetryTables,
  '0003_telemetry_retention': telemetryRetentionIndexes,
  '0004_canary_evidence': canaryEvidenceTables,
  '0005_canary_segments': canarySegments,
  '0006_canary_verdicts': canaryVerdicts,
  '0007_telemetry_pipeline': telemetryPipeline,
  '0008_release_approvals': releaseApprovals,
};

export interface MigrateOptions {
  /** PostgreSQL schema of the migration bookkeeping tables (see openStorage). */
  schema?: string;
  log?: (msg: string) => void;
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
  const { error, results } = await migrator.migrateToLatest();
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

function registryTables(dialect: DialectName): Migration {
  // Byte order ("C") on PostgreSQL, as SQLite's BINARY: lists sort the same on both dialects.
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;
  const bytes = dialect === 'postgres' ? 'bytea' : 'blob';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('releases')
        .addColumn('model', text, (c) => c.notNull())
        .addColumn('version', text, (c) => c.notNull())
        .addColumn('format', text, (c) => c.notNull())
        .addColumn('stage', text, (c) => c.notNull())
        .addColumn('signed', text, (c) => c.notNull())
        .addColumn('total_bytes', 'bigint', (c) => c.notNull())
        .addColumn('metrics', text, (c) => c.notNull())
        .addColumn('lineage', text, (c) => c.notNull())
        .addColumn('model_card', text, (c) => c.notNull())
        .addColumn('created_by', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('releases_pk', ['model', 'version'])
        .execute();

      await db.schema
        .createTable('channel_models')
        .addColumn('app', text, (c) => c.notNull())
        .addColumn('channel', text, (c) => c.notNull())
        .addColumn('model', text, (c) => c.notNull())
        .addColumn('production', text)
        .addColumn('previous_production', text)
        .addColumn('updated_at', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('channel_models_pk', ['app', 'channel', 'model'])
        .execute();

      await db.schema
        .createTable('channels')
        .addColumn('app', text, (c) => c.notNull())
        .addColumn('channel', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('channels_pk', ['app', 'channel'])
        .execute();

      await db.schema
        .createTable('rollouts')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('app', text, (c) => c.notNull())
        .addColumn('channel', text, (c) => c.notNull())
        .addColumn('model', text, (c) => c.notNull())
        .addColumn('release', text, (c) => c.notNull())
        .addColumn('control', text)
        .addColumn('mode', text, (c) => c.notNull())
        .addColumn('share_bps', 'integer', (c) => c.notNull())
        .addColumn('salt', text, (c) => c.notNull())
        .addColumn('state', text, (c) => c.notNull())
        .addColumn('reason', text)
        .addColumn('created_by', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull())
        .addColumn('updated_at', text, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('rollouts_app_channel_model')
        .on('rollouts')
        .columns(['app', 'channel', 'model'])
        .execute();

      // Append-only: ids only grow (AUTOINCREMENT never reuses one, unlike a bare rowid).
      await db.schema
        .createTable('audit')
        .$call((t) =>
          dialect === 'postgres'
            ? t.addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
            : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement()),
        )
        .addColumn('at', text, (c) => c.notNull())
        .addColumn('actor', text, (c) => c.notNull())
        .addColumn('action', text, (c) => c.notNull())
        .addColumn('app', text)
        .addColumn('channel', text)
        .addColumn('model', text)
        .addColumn('details', text, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('manifests')
        .addColumn('app', text, (c) => c.notNull())
        .addColumn('channel', text, (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('body', text, (c) => c.notNull())
        .addColumn('etag', text, (c) => c.notNull())
        .addColumn('created_at', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('manifests_pk', ['app', 'channel', 'version'])
        .execute();

      await db.schema
        .createTable('tokens')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('name', text, (c) => c.notNull())
        .addColumn('role', text, (c) => c.notNull())
        .addColumn('hash', text, (c) => c.notNull().unique())
        .addColumn('created_at', text, (c) => c.notNull())
        .addColumn('expires_at', text)
        .addColumn('revoked_at', text)
        .execute();

      await db.schema
        .createTable('chunks')
        .addColumn('sha256', text, (c) => c.primaryKey())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('bytes', bytes, (c) => c.notNull())
        .execute();
    },
  };
}

/**
 * Telemetry (update-server/src/telemetry): de-duplication keys, per-device caps, and aggregates per
 * release, backend, role and time window. Windows are epoch seconds (integers sort and bucket the
 * same on both dialects); histograms and per-bin counts are JSON text merged by the writer.
 */
function telemetryTables(dialect: DialectName): Migration {
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('telemetry_batches')
        .addColumn('batch_id', text, (c) => c.primaryKey())
        .addColumn('device_id', text, (c) => c.notNull())
        .addColumn('app', text, (c) => c.notNull())
        .addColumn('channel', text, (c) => c.notNull())
        .addColumn('window_start', 'bigint', (c) => c.notNull())
        .addColumn('records', 'integer', (c) => c.notNull())
        .addColumn('inferences', 'bigint', (c) => c.notNull())
        .addColumn('dropped', 'bigint', (c) => c.notNull())
        .addColumn('received_at', text, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('telemetry_batches_window')
        .on('telemetry_batches')
        .columns(['app', 'channel', 'window_start'])
        .execute();

      await db.schema
        .createTable('telemetry_device_windows')
        .addColumn('app', text, (c) => c.notNull())
        .addColumn('channel', text, (c) => c.notNull())
        .addColumn('device_id', text, (c) => c.notNull())
        .addColumn('window_start', 'bigint', (c) => c.notNull())
        .addColumn('batches', 'integer', (c) => c.notNull())
        .addColumn('inferences', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('telemetry_device_windows_pk', [
          'window_start',
          'app',
          'channel',
          'device_id',
        ])
        .execute();

      await db.schema
        .createTable('telemetry_devices')
        .addColumn('app', text, (c) => c.notNull())
        .addColumn('channel', text, (c) => c.notNull())
        .addColumn('model', text, (c) => c.notNull())
        .addColumn('version', text, (c) => c.notNull())
        .addColumn('role', text, (c) => c.notNull())
        .addColumn('window_start', 'bigint', (c) => c.notNull())
        .addColumn('device_id', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('telemetry_devices_pk', [
          'app',
          'channel',
          'model',
          'window_start',
          'version',
          'role',
          'device_id',
        ])
        .execute();

      await db.schema
        .createTable('telemetry_aggregates')
        .addColumn('app', text, (c) => c.notNull())
        .addColumn('channel', text, (c) => c.notNull())
        .addColumn('model', text, (c) => c.notNull())
        .addColumn('version', text, (c) => c.notNull())
        .addColumn('backend', text, (c) => c.notNull())
        .addColumn('role', text, (c) => c.notNull())
        .addColumn('window_start', 'bigint', (c) => c.notNull())
        .addColumn('batches', 'bigint', (c) => c.notNull())
        .addColumn('inferences', 'bigint', (c) => c.notNull())
        .addColumn('errors', 'bigint', (c) => c.notNull())
        .addColumn('errors_by_code', text, (c) => c.notNull())
        .addColumn('latency', text, (c) => c.notNull())
        .addColumn('load_ms_sum', 'double precision', (c) => c.notNull())
        .addColumn('load_count', 'bigint', (c) => c.notNull())
        .addColumn('download_bytes', 'bigint', (c) => c.notNull())
        .addColumn('download_ms_sum', 'double precision', (c) => c.notNull())
        .addColumn('features', text, (c) => c.notNull())
        .addColumn('shadow', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('telemetry_aggregates_pk', [
          'app',
          'channel',
          'model',
          'window_start',
          'version',
          'backend',
          'role',
        ])
        .execute();
    },
  };
}

/**
 * The pruner (telemetry/prune.ts) deletes by window_start across all apps and channels; without
 * these it would scan whole tables to find (or fail to find) rows past their retention.
 * telemetry_device_windows needs none: its primary key starts with window_start.
 */
function telemetryRetentionIndexes(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      for (const table of ['telemetry_batches', 'telemetry_devices', 'telemetry_aggregates']) {
        await db.schema.createIndex(`${table}_age`).on(table).column('window_start').execute();
      }
    },
  };
}

/**
 * What the canary analysis may count (update-server/src/canary/evidence.ts): every install the
 * server has seen, when and from which network, and per rollout, arm and install the numbers that
 * passed the bucket, first-seen and cap checks.
 */
function canaryEvidenceTables(dialect: DialectName): Migration {
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('telemetry_installs')
        .addColumn('device_id', text, (c) => c.primaryKey())
        .addColumn('prefix', text, (c) => c.notNull())
        .addColumn('first_seen_ms', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('telemetry_installs_age')
        .on('telemetry_installs')
        .column('last_seen_ms')
        .execute();
      await db.schema
        .createTable('canary_evidence')
        .addColumn('rollout_id', text, (c) => c.notNull())
        .addColumn('arm', text, (c) => c.notNull())
        .addColumn('device_id', text, (c) => c.notNull())
        .addColumn('prefix', text, (c) => c.notNull())
        .addColumn('inferences', 'bigint', (c) => c.notNull())
        .addColumn('errors', 'bigint', (c) => c.notNull())
        .addColumn('latency', text, (c) => c.notNull())
        .addColumn('features', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('canary_evidence_pk', ['rollout_id', 'arm', 'device_id'])
        .execute();
      await db.schema
        .createIndex('canary_evidence_prefix')
        .on('canary_evidence')
        .columns(['rollout_id', 'arm', 'prefix'])
        .execute();
    },
  };
}

/** Which kind of device each install is (protocol segments), so canary analysis can split by it. */
function canarySegments(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('canary_evidence').addColumn('segment', 'text').execute();
    },
  };
}

/**
 * The canary monitor's last verdict per rollout, so that every process (not only the leader that
 * judged) can show it, and a new leader knows which shadow decision was already announced.
 */
function canaryVerdicts(dialect: DialectName): Migration {
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('canary_verdicts')
        .addColumn('rollout_id', text, (c) => c.notNull())
        .addColumn('kind', text, (c) => c.notNull())
        .addColumn('decision', text, (c) => c.notNull())
        .addColumn('verdict', 'text', (c) => c.notNull())
        .addColumn('judged_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('canary_verdicts_pk', ['rollout_id', 'kind'])
        .execute();
    },
  };
}

/** The update pipeline's sums per aggregate (downloads, update failures, fallbacks: JSON). */
function telemetryPipeline(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('telemetry_aggregates')
        .addColumn('pipeline', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
    },
  };
}

/** Who approved a release for a channel and when, and each channel's promotion policy. */
function releaseApprovals(dialect: DialectName): Migration {
  const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('release_approvals')
        .addColumn('app', text, (c) => c.notNull())
        .addColumn('channel', text, (c) => c.notNull())
        .addColumn('model', text, (c) => c.notNull())
        .addColumn('version', text, (c) => c.notNull())
        .addColumn('approver', 'text', (c) => c.notNull())
        .addColumn('approved_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('release_approvals_pk', ['app', 'channel', 'model', 'version'])
        .execute();
      await db.schema
        .createTable('channel_policies')
        .addColumn('app', text, (c) => c.notNull())
        .addColumn('channel', text, (c) => c.notNull())
        .addColumn('policy', 'text', (c) => c.notNull())
        .addColumn('updated_by', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('channel_policies_pk', ['app', 'channel'])
        .execute();
    },
  };
}
