import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { FsBlobStore } from './fs-blob-store.ts';
import { KyselyRegistry } from './kysely-registry.ts';
import { migrateToLatest } from './migrations.ts';
import { PgBlobStore } from './pg-blob-store.ts';
import type { Database } from './schema.ts';
import { cachingStatements } from './statement-cache.ts';
import type { BlobStore, RegistryStore } from './types.ts';
import { FALLBACK_AUTOCHECKPOINT_PAGES, WalCheckpointer } from './wal-checkpointer.ts';

export interface StorageOptions {
  /** Holds `registry.db` and `blobs/` when there is no databaseUrl. */
  dataDir: string;
  /** PostgreSQL connection string: registry and chunks both live in that database. */
  databaseUrl?: string;
  log?: (msg: string) => void;
}

export interface Storage {
  registry: RegistryStore;
  blobs: BlobStore;
  /** The same Kysely instance (and, on SQLite, the same one connection) for the telemetry tables. */
  db: Kysely<Database>;
  dialect: 'sqlite' | 'postgres';
}

export const SQLITE_FILE = 'registry.db';
export const BLOBS_DIR = 'blobs';
const PG_POOL_SIZE = 10;

/**
 * Opens the registry and the chunk store and brings the schema up to date. On PostgreSQL both share
 * one pool, closed when both have been closed.
 */
export function openStorage(opts: StorageOptions): Promise<Storage> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts.log) : openSqlite(opts.dataDir, opts.log);
}

async function openSqlite(dataDir: string, log?: (msg: string) => void): Promise<Storage> {
  await mkdir(dataDir, { recursive: true });
  const file = join(dataDir, SQLITE_FILE);
  const database = new SqliteDatabase(file);
  try {
    database.pragma('journal_mode = WAL');
    // A commit is acknowledged once it is in the WAL file, which is fsynced only at checkpoints.
    // That survives a killed process (SIGKILL, OOM: the OS still writes its page cache); only a
    // power loss or kernel crash can lose the last commits, and never corrupts the database.
    // synchronous=FULL would fsync every commit to close that window too, at a write per commit.
    database.pragma('synchronous = NORMAL');
    // Checkpoints (and their fsyncs) run in a worker thread (storage/wal-checkpointer.ts); the
    // commit-time automatic checkpoint stays as a fallback, at a far larger WAL.
    database.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
    database.pragma('foreign_keys = ON');
    // A second process (a CLI, a backup) briefly holding the lock makes writers wait, not fail.
    database.pragma('busy_timeout = 5000');
  } catch (error) {
    database.close();
    throw error;
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cachingStatements(database) }) });
  await migrateOrDestroy(db, () => migrateToLatest(db, 'sqlite', { log }));
  const checkpointer = new WalCheckpointer(file);
  try {
    await checkpointer.ready;
  } catch (error) {
    // The commit-time automatic checkpoint still runs: slower under load, never unsafe.
    log?.(`storage: WAL checkpointer did not start (${(error as Error).message}); checkpoints run on commit`);
  }
  log?.(`storage: SQLite ${file}, chunks in ${join(dataDir, BLOBS_DIR)}`);
  return {
    registry: new KyselyRegistry(
      db,
      'sqlite',
      once(async () => {
        await checkpointer.stop();
        await db.destroy();
      }),
    ),
    blobs: new FsBlobStore(join(dataDir, BLOBS_DIR)),
    db,
    dialect: 'sqlite',
  };
}

async function openPostgres(databaseUrl: string, log?: (msg: string) => void): Promise<Storage> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: PG_POOL_SIZE });
  // An idle client whose connection drops (server restart) emits 'error'; unhandled, it would
  // crash the process. The pool drops that client and the next query gets a fresh one.
  pool.on('error', (error) => log?.(`storage: idle PostgreSQL connection failed: ${error.message}`));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  await migrateOrDestroy(db, async () => {
    // Kysely's migrator looks for its bookkeeping tables in every schema unless told which one;
    // name ours, so a database with several schemas (one per test run, say) keeps them apart.
    const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
    const schema = rows[0]?.schema;
    if (!schema) throw new Error('storage: no schema on the PostgreSQL search_path exists');
    await migrateToLatest(db, 'postgres', { schema, log });
    log?.(`storage: PostgreSQL, schema ${schema}`);
  });
  const release = refCounted(2, () => db.destroy());
  return {
    registry: new KyselyRegistry(db, 'postgres', once(release)),
    blobs: new PgBlobStore(db, once(release)),
    db,
    dialect: 'postgres',
  };
}

async function migrateOrDestroy(db: Kysely<Database>, migrate: () => Promise<void>): Promise<void> {
  try {
    await migrate();
  } catch (error) {
    await db.destroy().catch(() => {});
    throw error;
  }
}

/** Runs `destroy` when `release` has been called `count` times. */
function refCounted(count: number, destroy: () => Promise<void>): () => Promise<void> {
  let left = count;
  return async () => {
    left -= 1;
    if (left === 0) await destroy();
  };
}

/** A close() that may be called again: later calls wait for the first. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | null = null;
  return () => {
    done ??= fn();
    return done;
  };
}
