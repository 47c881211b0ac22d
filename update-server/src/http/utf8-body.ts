import type { MiddlewareHandler } from 'hono';
import { BadJsonError } from './api-errors.ts';

/** Thrown by the body stream of a text request whose bytes are not UTF-8: 400 E_BAD_JSON. */
export class InvalidUtf8Error extends BadJsonError {
  constructor() {
    super('the body is not valid UTF-8');
  }
}

// RFC 8259 §8.1: JSON exchanged between systems MUST be UTF-8. Bytes are checked as they are read.
const TEXT_TYPES = /^\s*(application\/([\w.+-]+\+)?json|text\/)/i;

/**
 * Refuses text bodies (JSON, text/*) that are not valid UTF-8 with 400 E_BAD_JSON, instead of
 * letting a decoder turn the bad bytes into U+FFFD (a halt reason stored as something else than
 * what was sent). It wraps the body in a checking stream rather than reading it, so each route's
 * own size limit still applies before anything is buffered.
 */
export function requireUtf8Bodies(opts: { skip?: (path: string) => boolean } = {}): MiddlewareHandler {
  return async (c, next) => {
    // Headers first: touching `raw.body` builds a full Request and a body stream, even for a GET.
    if (c.req.method === 'GET' || c.req.method === 'HEAD' || opts.skip?.(c.req.path)) return next();
    const raw = c.req.raw;
    if (TEXT_TYPES.test(c.req.header('content-type') ?? '') && raw.body) {
      const check = utf8Check(() => c.set('invalidUtf8', true));
      c.req.raw = new Request(raw, { body: raw.body.pipeThrough(check), duplex: 'half' } as RequestInit);
    }
    await next();
  };
}

function utf8Check(onInvalid: () => void): TransformStream<Uint8Array, Uint8Array> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  return new TransformStream({
    transform(chunk, controller) {
      try {
        decoder.decode(chunk, { stream: true });
      } catch {
        onInvalid();
        throw new InvalidUtf8Error();
      }
      controller.enqueue(chunk);
    },
    flush() {
      try {
        decoder.decode(); // a sequence cut off at the end
      } catch {
        onInvalid();
        throw new InvalidUtf8Error();
      }
    },
  });
}
