import { EdgeshipError } from '@edgeship/protocol';

/** A record whose key already exists (releases, manifests, rollouts and tokens are insert-only). */
export class ConflictError extends Error {
  readonly code = 'E_CONFLICT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConflictError';
  }
}

/** An update of a row that does not exist. */
export class NotFoundError extends EdgeshipError {
  constructor(message: string) {
    super('E_NOT_FOUND', message);
  }
}

const SQLITE_UNIQUE_CODES = new Set(['SQLITE_CONSTRAINT_PRIMARYKEY', 'SQLITE_CONSTRAINT_UNIQUE']);
// PostgreSQL Appendix A, class 23: "23505 unique_violation".
const PG_UNIQUE_VIOLATION = '23505';

/** True for a duplicate-key error from better-sqlite3 or pg. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === PG_UNIQUE_VIOLATION || SQLITE_UNIQUE_CODES.has(code));
}
