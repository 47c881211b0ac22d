import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ApiError } from './api-error.ts';

/** Hono's body limit, answering the documented 413 (bytes, as sent on the wire). */
export function limitBody(maxSize: number): MiddlewareHandler {
  return bodyLimit({
    maxSize,
    onError: () => {
      // The rest of the body stays unread, so this connection cannot carry another request.
      throw new ApiError(413, 'E_TOO_LARGE', `the body exceeds ${maxSize} bytes`, { connection: 'close' });
    },
  });
}
