import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { tooLarge } from './api-errors.ts';

/** Hono's body limit, answering the documented 413 (bytes, as sent on the wire). */
export function limitBody(maxSize: number): MiddlewareHandler {
  return bodyLimit({
    maxSize,
    onError: () => {
      throw tooLarge(`the body exceeds ${maxSize} bytes`);
    },
  });
}
