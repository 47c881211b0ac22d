import type { IncomingMessage } from 'node:http';
import { readCapped } from '@edgeship/protocol';
import type { Context } from 'hono';

/**
 * The request body as bytes, at most `maxBytes` (else `tooLarge()` is thrown, before more is
 * read): the protocol's capped reader over the Web Request's body. On @hono/node-server it reads
 * the socket's IncomingMessage directly instead: going through the Web Request (what
 * `c.req.arrayBuffer()` and hono/body-limit do) builds a Request, a ReadableStream and its reader
 * per request, a large share of a small POST's cost. Use it only where no earlier middleware
 * touched `c.req.raw.body`.
 */
export async function readBody(c: Context, maxBytes: number, tooLarge: () => Error): Promise<Uint8Array> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge();
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming) return readIncoming(incoming, maxBytes, tooLarge);
  const source = c.req.raw.body;
  return source ? readCapped(source, maxBytes, tooLarge) : new Uint8Array(0);
}

/** With 'data' events: an async iterator over a stream costs more than a 1 KiB batch's parse. */
function readIncoming(
  incoming: IncomingMessage,
  maxBytes: number,
  tooLarge: () => Error,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const onData = (part: Buffer) => {
      size += part.byteLength;
      if (size > maxBytes) {
        cleanup();
        incoming.resume(); // the answer (413, Connection: close) goes out; the rest is discarded
        reject(tooLarge());
        return;
      }
      parts.push(part);
    };
    const onEnd = () => {
      cleanup();
      resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onAborted = () => onError(new Error('the client went away before sending its body'));
    const cleanup = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('aborted', onAborted);
    };
    if (incoming.readableEnded) {
      resolve(new Uint8Array(0));
      return;
    }
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('aborted', onAborted);
  });
}
