/**
 * Exit codes the CLI's scripts can rely on (cli/README.md's table; cli/src/exit-codes.test.ts runs
 * every row).
 */
export const EXIT = {
  ok: 0,
  failed: 1, // the operation was refused: verification, gate, conflict
  usage: 2, // bad arguments or unreadable input files
  unreachable: 3, // the server could not be reached
  auth: 4, // unknown, expired or revoked token, or the wrong role
} as const;

interface CodeRow {
  /** What the update server answers with this code (and what it would, for device-side codes). */
  status: number;
  /** What `edgeship` exits with when a command fails with this code. */
  exit: number;
}

/**
 * Every stable error code, with its HTTP status and CLI exit code. Codes are API: never rename
 * one, only add. Clients branch on `code`, the server sends it as `{ error: { code, message } }`,
 * and it survives the worker boundary.
 */
export const ERROR_TABLE = {
  E_MALFORMED: { status: 400, exit: EXIT.failed }, // bytes that do not parse or match the schema
  E_SIGNATURE: { status: 401, exit: EXIT.failed }, // bad signature, or too few valid ones (arbitrary installation)
  E_UNKNOWN_KEY: { status: 422, exit: EXIT.failed }, // signed by a key the trusted key set does not name
  E_PUBLISHER_SIGNATURE: { status: 422, exit: EXIT.failed }, // no trusted publisher signed the release (compromised server key)
  E_EXPIRED: { status: 422, exit: EXIT.failed }, // manifest or key set past its expiry (indefinite freeze)
  E_ROLLBACK: { status: 409, exit: EXIT.failed }, // older than the newest accepted (rollback attack)
  E_WRONG_TARGET: { status: 422, exit: EXIT.failed }, // manifest for another app or channel (wrong software)
  E_HASH: { status: 422, exit: EXIT.failed }, // bytes whose SHA-256 differs from the signed one
  E_LENGTH: { status: 422, exit: EXIT.failed }, // a download longer or shorter than declared (endless data)
  E_STALLED: { status: 504, exit: EXIT.failed }, // a download with no progress before its deadline (slow retrieval)
  E_NETWORK: { status: 502, exit: EXIT.unreachable }, // the server could not be reached
  E_HTTP: { status: 502, exit: EXIT.failed }, // the server answered with an unexpected status
  E_QUOTA: { status: 507, exit: EXIT.failed }, // storage quota exceeded; the active model keeps working
  E_INPUT: { status: 400, exit: EXIT.failed }, // inference inputs that do not match the input schema
  E_NO_BACKEND: { status: 500, exit: EXIT.failed }, // no execution backend could run the model
  E_UNSUPPORTED_RUNTIME: { status: 422, exit: EXIT.failed }, // the release needs a newer runtime
  E_HEALTH_CHECK: { status: 422, exit: EXIT.failed }, // failed to load, threw, or gave non-finite outputs
  E_NOT_FOUND: { status: 404, exit: EXIT.failed }, // no such model, release, rollout, token or route
  E_DISPOSED: { status: 410, exit: EXIT.failed }, // the runtime was disposed
  E_LIFETIME: { status: 422, exit: EXIT.failed }, // valid longer than its key set allows, or issued in the future (freeze)
  E_VERSION_CONFLICT: { status: 409, exit: EXIT.failed }, // another document at a version already accepted (mix-and-match)
  E_TIMEOUT: { status: 504, exit: EXIT.failed }, // a start-up (or other bounded wait) that did not finish in time
  E_INTERNAL: { status: 500, exit: EXIT.failed }, // an error with no code of its own: a bug, or a dependency's
  // The update server's codes.
  E_BAD_JSON: { status: 400, exit: EXIT.failed }, // a body that is not (UTF-8) JSON
  E_VALIDATION: { status: 400, exit: EXIT.failed }, // a body, parameter or query the schema refuses
  E_TOO_LARGE: { status: 413, exit: EXIT.failed }, // a body over its route's limit
  E_UNAUTHENTICATED: { status: 401, exit: EXIT.auth }, // no token, or an unknown, expired or revoked one
  E_FORBIDDEN: { status: 403, exit: EXIT.auth }, // the token's role does not allow this
  E_CONFLICT: { status: 409, exit: EXIT.failed }, // the record exists (releases, manifests and tokens are insert-only)
  E_MISSING_CHUNKS: { status: 409, exit: EXIT.failed }, // a release registered before all its chunks were uploaded
  E_RANGE: { status: 416, exit: EXIT.failed }, // a Range header that cannot be served
  E_RATE_LIMITED: { status: 429, exit: EXIT.failed }, // too many requests; Retry-After says when to come back
  E_UNSUPPORTED_MEDIA_TYPE: { status: 415, exit: EXIT.failed }, // a body of the wrong Content-Type
  E_INVALID_STATE: { status: 409, exit: EXIT.failed }, // a rollout step its current state does not allow
  E_TOO_OLD: { status: 422, exit: EXIT.failed }, // a telemetry batch sealed too long ago to be de-duplicated
  E_FROM_FUTURE: { status: 422, exit: EXIT.failed }, // a telemetry batch sealed beyond the clock-skew bound
  E_NOT_READY: { status: 503, exit: EXIT.failed }, // /readyz: the database does not answer
  E_NO_KEYS: { status: 500, exit: EXIT.failed }, // a production server started with no keys in its key directory
  E_POLICY: { status: 409, exit: EXIT.failed }, // a channel policy refuses the step (no approval, or the publisher approving their own release)
  // The CLI's codes.
  E_CLI: { status: 400, exit: EXIT.usage }, // bad arguments or unreadable input files
  E_USAGE: { status: 400, exit: EXIT.usage }, // commander's own usage errors
  E_AUTH: { status: 401, exit: EXIT.usage }, // no --token or EDGESHIP_TOKEN
  E_GATE: { status: 422, exit: EXIT.failed }, // a validation gate refused the model
  E_PROFILE: { status: 422, exit: EXIT.failed }, // a monitored feature with no finite value on the calibration data
} as const satisfies Record<string, CodeRow>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export const ERROR_CODES = Object.keys(ERROR_TABLE) as readonly ErrorCode[] as readonly [
  ErrorCode,
  ...ErrorCode[],
];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_TABLE, value);
}

/** One base for every error a caller may branch on: a stable `code`, the rest from the table. */
export class EdgeshipError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A class whose code the class fixes (its static `code`, set through `coded`), so class and code
 * cannot disagree: `class HashMismatchError extends coded('E_HASH', DownloadError) {}`.
 */
export abstract class CodedError extends EdgeshipError {
  declare static readonly code: ErrorCode;
  /** A status other than the code's, for a class that needs one (e.g. 422 for a permanent refusal). */
  declare static readonly status?: number;

  constructor(message: string, options?: { cause?: unknown }) {
    super((new.target as unknown as typeof CodedError).code, message, options);
  }
}

/** The base for a class whose code is `code`: a subclass of `Base` (CodedError by default). */
export function coded(code: ErrorCode, Base: typeof CodedError = CodedError): typeof CodedError {
  abstract class Coded extends Base {
    static override readonly code = code;
  }
  return Coded;
}

/** Verification failures: the bytes must not be trusted. */
export abstract class VerificationError extends CodedError {}
export class SignatureError extends coded('E_SIGNATURE', VerificationError) {}
export class UnknownKeyError extends coded('E_UNKNOWN_KEY', SignatureError) {}
export class PublisherSignatureError extends coded('E_PUBLISHER_SIGNATURE', SignatureError) {}
export class ExpiredError extends coded('E_EXPIRED', VerificationError) {}
export class LifetimeError extends coded('E_LIFETIME', ExpiredError) {}
export class RollbackError extends coded('E_ROLLBACK', VerificationError) {}
export class VersionConflictError extends coded('E_VERSION_CONFLICT', RollbackError) {}
export class WrongTargetError extends coded('E_WRONG_TARGET', VerificationError) {}
export class MalformedError extends coded('E_MALFORMED', VerificationError) {}

/** Download failures: the bytes did not arrive as declared. */
export abstract class DownloadError extends CodedError {}
export class HashMismatchError extends coded('E_HASH', DownloadError) {}
export class LengthMismatchError extends coded('E_LENGTH', DownloadError) {}
export class StalledDownloadError extends coded('E_STALLED', DownloadError) {}

export class NetworkError extends coded('E_NETWORK') {}
/** A server answered with a status the caller did not expect; `status` is that status. */
export class HttpStatusError extends coded('E_HTTP') {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}
export class InputError extends coded('E_INPUT') {}
export class QuotaError extends coded('E_QUOTA') {}
export class UnsupportedRuntimeError extends coded('E_UNSUPPORTED_RUNTIME') {}
export class NotFoundError extends coded('E_NOT_FOUND') {}
export class DisposedError extends coded('E_DISPOSED') {}
export class TimeoutError extends coded('E_TIMEOUT') {}
/** A record whose key already exists (releases, manifests, rollouts and tokens are insert-only). */
export class ConflictError extends coded('E_CONFLICT') {}
export class UnauthenticatedError extends coded('E_UNAUTHENTICATED') {}
export class ForbiddenError extends coded('E_FORBIDDEN') {}

/**
 * The code of anything thrown. One rule wherever an error surfaces: an EdgeshipError keeps its
 * code; anything else has none of its own and is E_INTERNAL. The code that knows what failed
 * (a fetch, a model load) wraps the error in a typed one there; nothing downstream guesses.
 */
export function codeOf(error: unknown): ErrorCode {
  return error instanceof EdgeshipError ? error.code : 'E_INTERNAL';
}

/** The HTTP status an error renders with: its class's own, else its code's. */
export function httpStatusOf(error: EdgeshipError): number {
  return (error.constructor as typeof CodedError).status ?? ERROR_TABLE[error.code].status;
}

/** The CLI exit code for a failure with `code`. */
export function exitCodeOf(code: ErrorCode): number {
  return ERROR_TABLE[code].exit;
}

// --- Crossing a boundary (worker ↔ page) as plain, structured-clonable data ---

/** An error as plain data: what postMessage can carry. */
export interface ErrorData {
  name: string;
  message: string;
  stack?: string;
  code?: ErrorCode;
  /** The class's own fields (a NoBackendError's `reasons`, an ActivationError's `phase`). */
  details?: Record<string, unknown>;
}

type ErrorClass = abstract new (...args: never[]) => EdgeshipError;

const BUILT_IN: readonly ErrorClass[] = [
  SignatureError,
  UnknownKeyError,
  PublisherSignatureError,
  ExpiredError,
  LifetimeError,
  RollbackError,
  VersionConflictError,
  WrongTargetError,
  MalformedError,
  HashMismatchError,
  LengthMismatchError,
  StalledDownloadError,
  NetworkError,
  HttpStatusError,
  InputError,
  QuotaError,
  UnsupportedRuntimeError,
  NotFoundError,
  DisposedError,
  TimeoutError,
  ConflictError,
  UnauthenticatedError,
  ForbiddenError,
];

const OWN_FIELDS = new Set(['name', 'message', 'stack', 'code', 'cause']);

export function serializeError(error: unknown): ErrorData {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const data: ErrorData = { name: error.name, message: error.message, stack: error.stack };
  if (error instanceof EdgeshipError) {
    data.code = error.code;
    const details: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(error)) {
      if (OWN_FIELDS.has(key)) continue;
      // Only what postMessage can clone: a field that cannot cross is left behind, not fatal.
      try {
        details[key] = structuredClone(value);
      } catch {}
    }
    if (Object.keys(details).length > 0) data.details = details;
  }
  return data;
}

/**
 * Rebuilds an error from its data: the registered class of that name, else the class that fixes
 * its code, else an EdgeshipError with the code (class names do not survive every minifier, codes
 * do). The message, stack and the class's fields come back as they were; no constructor runs.
 */
export function deserializeError(data: ErrorData, classes: readonly ErrorClass[] = []): Error {
  if (!data.code || !isErrorCode(data.code)) {
    const plain = new Error(data.message);
    plain.name = data.name;
    if (data.stack !== undefined) plain.stack = data.stack;
    return plain;
  }
  const all = [...classes, ...BUILT_IN];
  const Class =
    all.find((c) => c.name === data.name) ??
    all.find((c) => (c as unknown as typeof CodedError).code === data.code) ??
    EdgeshipError;
  const error = Object.create(Class.prototype) as EdgeshipError;
  const hidden = (value: unknown) => ({ value, writable: true, configurable: true, enumerable: false });
  Object.defineProperties(error, {
    message: hidden(data.message),
    name: hidden(data.name),
    stack: hidden(data.stack ?? `${data.name}: ${data.message}`),
  });
  Object.assign(error, { code: data.code }, data.details);
  return error;
}

/**
 * Why a backend candidate was passed over when a release opened (runtime engines/select.ts): a
 * NoBackendError's reasons carry them, so they live here, on the zod-free subpath;
 * the runtime's FallbackCode is this list.
 */
export const BACKEND_FALLBACK_CODES = [
  'no-webgpu',
  'not-isolated',
  'single-core',
  'not-bundled',
  'not-available',
  'unsupported-op',
  'session-failed',
  'threads-fixed',
  'non-finite',
  'remembered-failed',
  'wasm-missing',
] as const;
