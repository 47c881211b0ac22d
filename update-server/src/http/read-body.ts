import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';

/**
 * The request body as bytes, at most `maxBytes` (else `tooLarge()` is thrown, before more is
 * read). On @hono/node-server it reads the socket's IncomingMessage directly: going through the
 * Web Request (what `c.req.arrayBuffer()` and hono/body-limit do) builds a Request, a
 * ReadableStream and its reader per request, a large share of a small POST's cost. Use it only
 * where no earlier middleware touched `c.req.raw.body`.
 */
export async function readBody(c: Context, maxBytes: number, tooLarge: () => Error): Promise<Uint8Array> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge();
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  // A Web ReadableStream is async-iterable on Node too.
  const source = (incoming ?? c.req.raw.body) as AsyncIterable<Uint8Array> | null;
  if (!source) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const part of source) {
    size += part.byteLength;
    if (size > maxBytes) throw tooLarge();
    parts.push(part);
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
}
