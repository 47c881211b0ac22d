/**
 * Stable error codes. They are API: never rename one, only add. Clients branch on `code`,
 * the server sends it as `{ error: { code, message } }`, and it survives the worker boundary.
 */
export const ERROR_CODES = [
  'E_MALFORMED', // bytes that do not parse or do not match the schema
  'E_SIGNATURE', // bad signature, or too few valid signatures (arbitrary installation)
  'E_UNKNOWN_KEY', // signed by a key the trusted key set does not name
  'E_PUBLISHER_SIGNATURE', // a release no trusted publisher signed (compromised server key)
  'E_EXPIRED', // manifest or key set past its expiry (indefinite freeze)
  'E_ROLLBACK', // older than the newest accepted (rollback attack)
  'E_WRONG_TARGET', // manifest for another app or channel (wrong software)
  'E_HASH', // file or chunk bytes whose SHA-256 differs from the signed one
  'E_LENGTH', // a download longer or shorter than declared (endless data)
  'E_STALLED', // a download that made no progress before its deadline (slow retrieval)
  'E_NETWORK', // the server could not be reached
  'E_HTTP', // the server answered with an unexpected status
  'E_QUOTA', // storage quota exceeded; the active model keeps working
  'E_INPUT', // inference inputs that do not match the release's input schema
  'E_NO_BACKEND', // no execution backend could run the model
  'E_UNSUPPORTED_RUNTIME', // the release needs a newer runtime
  'E_HEALTH_CHECK', // a release that failed to load, threw, or produced non-finite outputs
  'E_NOT_FOUND', // no such model or release
  'E_DISPOSED', // the runtime was disposed
  'E_LIFETIME', // a manifest valid for longer than its key set allows, or issued in the future (freeze)
  'E_VERSION_CONFLICT', // a different document at a version already accepted (mix-and-match)
  'E_TIMEOUT', // a start-up (or other bounded wait) that did not finish in time
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

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

/** Verification failures: the bytes must not be trusted. */
export class VerificationError extends EdgeshipError {}
export class SignatureError extends VerificationError {}
export class ExpiredError extends VerificationError {}
export class RollbackError extends VerificationError {}
export class WrongTargetError extends VerificationError {}
export class MalformedError extends VerificationError {}

/** Download failures: the bytes did not arrive as declared. */
export class DownloadError extends EdgeshipError {}
export class HashMismatchError extends DownloadError {}
export class LengthMismatchError extends DownloadError {}
export class StalledDownloadError extends DownloadError {}

export class InputError extends EdgeshipError {}

/** Rebuilds a typed error from plain data (e.g. after crossing a worker boundary). */
export function errorFromData(data: { code: string; message: string; name?: string }): EdgeshipError {
  const code = (ERROR_CODES as readonly string[]).includes(data.code)
    ? (data.code as ErrorCode)
    : 'E_MALFORMED';
  const Class = errorClassFor(code);
  return new Class(code, data.message);
}

function errorClassFor(code: ErrorCode): typeof EdgeshipError {
  switch (code) {
    case 'E_SIGNATURE':
    case 'E_UNKNOWN_KEY':
    case 'E_PUBLISHER_SIGNATURE':
      return SignatureError;
    case 'E_EXPIRED':
    case 'E_LIFETIME':
      return ExpiredError;
    case 'E_ROLLBACK':
    case 'E_VERSION_CONFLICT':
      return RollbackError;
    case 'E_WRONG_TARGET':
      return WrongTargetError;
    case 'E_MALFORMED':
      return MalformedError;
    case 'E_HASH':
      return HashMismatchError;
    case 'E_LENGTH':
      return LengthMismatchError;
    case 'E_STALLED':
      return StalledDownloadError;
    case 'E_INPUT':
      return InputError;
    default:
      return EdgeshipError;
  }
}
