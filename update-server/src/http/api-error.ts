import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** Stable error codes of the HTTP API. They are API: never rename one, only add. */
export type ApiErrorCode =
  | 'E_BAD_JSON'
  | 'E_VALIDATION'
  | 'E_TOO_LARGE'
  | 'E_UNAUTHENTICATED'
  | 'E_FORBIDDEN'
  | 'E_NOT_FOUND'
  | 'E_CONFLICT'
  | 'E_HASH'
  | 'E_LENGTH'
  | 'E_SIGNATURE'
  | 'E_PUBLISHER_SIGNATURE'
  | 'E_UNKNOWN_KEY'
  | 'E_MISSING_CHUNKS'
  | 'E_RANGE'
  | 'E_RATE_LIMITED'
  | 'E_UNSUPPORTED_MEDIA_TYPE'
  | 'E_INVALID_STATE'
  | 'E_INTERNAL'
  /** A telemetry batch sealed too long ago to be de-duplicated (telemetry/retention.ts). */
  | 'E_TOO_OLD'
  /** A telemetry batch sealed further ahead of the server's clock than the skew bound. */
  | 'E_FROM_FUTURE';

/** An error that renders itself as `{ error: { code, message } }` with its status. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ApiErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): ApiErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

export interface ApiErrorBody {
  error: { code: string; message: string };
}

export const notFound = (what: string) => new ApiError(404, 'E_NOT_FOUND', `${what} not found`);
export const invalidState = (message: string) => new ApiError(409, 'E_INVALID_STATE', message);
