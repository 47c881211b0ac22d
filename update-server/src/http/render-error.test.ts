// The one error handler, on a real Hono app: an EdgeshipError answers with its own code and
// status, library errors get theirs, and anything else is a bug: a bare 500 that says nothing of
// it to the client, with the whole error in the log.
import { UnauthenticatedError } from '@edgeship/protocol';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { renderError } from './render-error.ts';

function appLogging(lines: Array<Record<string, unknown>>) {
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const app = new Hono();
  app.onError((error, c) => renderError(error, c, log));
  app.get('/bug', () => {
    throw new Error('connection string postgres://admin:hunter2@db');
  });
  app.get('/coded', () => {
    throw new UnauthenticatedError('no token');
  });
  app.get('/zod', () => {
    z.object({ n: z.number() }).parse({ n: 'x' });
    return new Response('unreachable');
  });
  app.get('/big', () => {
    throw new HTTPException(413);
  });
  return app;
}

describe('renderError', () => {
  it('answers an uncoded error with a 500 E_INTERNAL that tells the client nothing, and logs it whole', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const response = await appLogging(lines).request('/bug');
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ error: { code: 'E_INTERNAL', message: 'internal error' } });
    expect(text).not.toContain('hunter2');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, msg: 'request failed' });
    expect(JSON.stringify(lines[0])).toContain('hunter2');
  });

  it('lets an EdgeshipError answer with its code and status, and logs nothing below 500', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const response = await appLogging(lines).request('/coded');
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: { code: 'E_UNAUTHENTICATED', message: 'no token' } });
    expect(lines).toEqual([]);
  });

  it("gives the libraries' errors their codes: zod E_VALIDATION 400, an HTTPException 413 E_TOO_LARGE", async () => {
    const app = appLogging([]);
    const invalid = await app.request('/zod');
    expect(invalid.status).toBe(400);
    const body = (await invalid.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('E_VALIDATION');
    expect(body.error.message).toMatch(/^n: /);
    const big = await app.request('/big');
    expect(big.status).toBe(413);
    expect(big.headers.get('connection')).toBe('close');
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('E_TOO_LARGE');
  });
});
