import { EdgeshipError, httpStatusOf, UnauthenticatedError } from '@edgeship/protocol';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import { z } from 'zod';
import { BadJsonError, responseHeadersOf, tooLarge, ValidationError } from './api-errors.ts';
import { InvalidUtf8Error } from './utf8-body.ts';

export interface ErrorBody {
  error: { code: string; message: string };
}

/**
 * The one error handler (app.onError), as Hono's own does for HTTPException: an EdgeshipError
 * answers for itself, `{ error: { code, message } }` with its status and headers; the errors of
 * the libraries below (zod, Hono's validators) are given their code here; anything else is a bug:
 * logged, and a 500 that says nothing of it.
 */
export function renderError(error: unknown, c: Context, log: Logger): Response {
  let known = error instanceof EdgeshipError ? error : fromLibrary(error);
  if (!known) {
    log.error({ err: error, reqId: c.get('requestId') }, 'request failed');
    return c.json({ error: { code: 'E_INTERNAL', message: 'internal error' } } satisfies ErrorBody, 500);
  }
  // A validator that met the bad bytes reports only "not JSON"; say what was wrong.
  if (known.code === 'E_BAD_JSON' && c.get('invalidUtf8')) known = new InvalidUtf8Error();
  const status = httpStatusOf(known);
  if (status >= 500) log.error({ err: error, reqId: c.get('requestId') }, 'request failed');
  for (const [name, value] of Object.entries(responseHeadersOf(known))) c.header(name, value);
  const body: ErrorBody = { error: { code: known.code, message: known.message } };
  return c.json(body, status as ContentfulStatusCode);
}

function fromLibrary(error: unknown): EdgeshipError | null {
  if (error instanceof z.ZodError) return new ValidationError(describeIssues(error.issues));
  if (error instanceof HTTPException) {
    // Hono's validators throw 400 on a body that is not JSON.
    if (error.status === 400) return new BadJsonError('the body is not valid JSON');
    if (error.status === 413) return tooLarge('the body is too large');
    if (error.status === 401) return new UnauthenticatedError(error.message);
    return new ValidationError(error.message);
  }
  return null;
}

export function describeIssues(issues: z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : 'body'}: ${issue.message}`)
    .join('; ');
}
