import { coded, type EdgeshipError, NotFoundError } from '@edgeship/protocol';

// The update server's own codes; their statuses are in protocol's ERROR_TABLE, beside the codes
// the server shares with devices and the CLI (E_NOT_FOUND, E_CONFLICT, E_HASH, …).

/** A body, parameter or query the schema refuses (400). */
export class ValidationError extends coded('E_VALIDATION') {}
/**
 * Well-formed, but refused on what it says (a telemetry batch naming an unknown release): 422,
 * permanent, so the device drops it instead of retrying.
 */
export class UnprocessableError extends ValidationError {
  static override readonly status = 422;
}
export class BadJsonError extends coded('E_BAD_JSON') {}
export class TooLargeError extends coded('E_TOO_LARGE') {}
export class UnsupportedMediaTypeError extends coded('E_UNSUPPORTED_MEDIA_TYPE') {}
export class RateLimitedError extends coded('E_RATE_LIMITED') {}
export class RangeNotSatisfiableError extends coded('E_RANGE') {}
/** A rollout or token step its current state does not allow (409). */
export class InvalidStateError extends coded('E_INVALID_STATE') {}
export class MissingChunksError extends coded('E_MISSING_CHUNKS') {}
export class TooOldError extends coded('E_TOO_OLD') {}
export class FromFutureError extends coded('E_FROM_FUTURE') {}
export class NotReadyError extends coded('E_NOT_READY') {}

/**
 * A channel policy refuses the step (409): promotion without the approval it requires, or an
 * approval by the release's own publisher where a second person is required. Always audited.
 */
export class PolicyRefusedError extends coded('E_POLICY') {
  constructor(
    message: string,
    /** What was refused, for the audit entry: `{ attempted: 'release.approve', version, ... }`. */
    readonly details: Record<string, unknown>,
  ) {
    super(message);
  }
}

// Headers an error's answer carries (a challenge, Retry-After, Content-Range), kept beside the
// error rather than on it: they are HTTP's business, and protocol's classes know nothing of HTTP.
const RESPONSE_HEADERS = new WeakMap<EdgeshipError, Record<string, string>>();

/** `error`, answered with `headers` too. */
export function withHeaders<E extends EdgeshipError>(error: E, headers: Record<string, string>): E {
  RESPONSE_HEADERS.set(error, headers);
  return error;
}

export function responseHeadersOf(error: EdgeshipError): Record<string, string> {
  return RESPONSE_HEADERS.get(error) ?? {};
}

/** Too many requests: 429 with Retry-After. */
export function rateLimited(why: string, retryAfterSec: number): RateLimitedError {
  return withHeaders(new RateLimitedError(`${why}; retry in ${retryAfterSec} s`), {
    'Retry-After': String(retryAfterSec),
  });
}

/** A body over its limit: the rest stays unread, so this connection cannot carry another request. */
export function tooLarge(message: string): TooLargeError {
  return withHeaders(new TooLargeError(message), { connection: 'close' });
}

export const notFound = (what: string) => new NotFoundError(`${what} not found`);
export const invalidState = (message: string) => new InvalidStateError(message);
