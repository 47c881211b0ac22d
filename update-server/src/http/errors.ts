import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ConflictError, NotFoundError } from '../storage/errors.ts';
import { ApiError } from './api-error.ts';
import { InvalidUtf8Error, invalidUtf8 } from './utf8-body.ts';

/** Turns any thrown error into the documented JSON error; only real bugs become a 500. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof InvalidUtf8Error) return invalidUtf8();
  if (error instanceof ConflictError) return new ApiError(409, 'E_CONFLICT', error.message);
  if (error instanceof NotFoundError) return new ApiError(404, 'E_NOT_FOUND', error.message);
  if (error instanceof z.ZodError) return new ApiError(400, 'E_VALIDATION', describeIssues(error.issues));
  if (error instanceof HTTPException) {
    // Hono's validators throw 400 on a body that is not JSON.
    if (error.status === 400) return new ApiError(400, 'E_BAD_JSON', 'the body is not valid JSON');
    if (error.status === 413) return new ApiError(413, 'E_TOO_LARGE', 'the body is too large');
    return new ApiError(error.status === 401 ? 401 : 400, 'E_VALIDATION', error.message);
  }
  return new ApiError(500, 'E_INTERNAL', 'internal error');
}

export function describeIssues(issues: z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : 'body'}: ${issue.message}`)
    .join('; ');
}

export function renderError(error: unknown, c: Context, log: Logger): Response {
  let apiError = toApiError(error);
  // A validator that met the bad bytes reports only "not JSON"; say what was wrong.
  if (apiError.code === 'E_BAD_JSON' && c.get('invalidUtf8')) apiError = invalidUtf8();
  if (apiError.status >= 500) log.error({ err: error, reqId: c.get('requestId') }, 'request failed');
  for (const [name, value] of Object.entries(apiError.headers)) c.header(name, value);
  return c.json(apiError.toBody(), apiError.status);
}
