import type SqliteDatabase from 'better-sqlite3';

/** Distinct statements kept prepared; the server issues a few dozen shapes, far fewer than this. */
const MAX_STATEMENTS = 512;

/**
 * The database as Kysely's SqliteDialect sees it, with prepared statements reused by SQL text.
 * Kysely prepares every query anew, and on the ingest path SQLite's parse and plan cost more than
 * running the statement. Safe on one connection: Kysely runs one statement at a time and never
 * keeps an iterator open across queries but for `stream()`, which the server does not use.
 */
export interface CachingDatabase {
  close(): void;
  prepare(sql: string): SqliteDatabase.Statement;
}

export function cachingStatements(database: SqliteDatabase.Database): CachingDatabase {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => database.close(),
    prepare(sql: string): SqliteDatabase.Statement {
      let statement = cache.get(sql);
      if (statement) {
        // Map order is insertion order: re-inserting makes it the most recently used.
        cache.delete(sql);
      } else {
        statement = database.prepare(sql);
        if (cache.size >= MAX_STATEMENTS) cache.delete(cache.keys().next().value!);
      }
      cache.set(sql, statement);
      return statement;
    },
  };
}
