const SQLITE_UNIQUE_CODES = new Set(['SQLITE_CONSTRAINT_PRIMARYKEY', 'SQLITE_CONSTRAINT_UNIQUE']);
// PostgreSQL Appendix A, class 23: "23505 unique_violation".
const PG_UNIQUE_VIOLATION = '23505';

/** True for a duplicate-key error from better-sqlite3 or pg (foreign errors: their `code` is theirs). */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === PG_UNIQUE_VIOLATION || SQLITE_UNIQUE_CODES.has(code));
}
