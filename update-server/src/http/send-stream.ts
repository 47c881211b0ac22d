import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';

/**
 * Sends a Node stream as the body. On @hono/node-server it is piped straight into the socket with
 * the headers set so far (middleware must set its headers before the handler runs) (what a static file server does: no Web-stream hop per chunk, no copy);
 * elsewhere (app.request in tests, other runtimes) it goes through a Web ReadableStream.
 */
export function sendStream(c: Context, status: number, body: Readable): Response {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (!outgoing) {
    return c.body(Readable.toWeb(body) as ReadableStream<Uint8Array>, status as 200);
  }
  const headers: Record<string, string> = {};
  c.res.headers.forEach((value, name) => {
    headers[name] = value;
  });
  outgoing.writeHead(status, headers);
  pipeline(body, outgoing).catch(() => {
    // Client went away, or the store failed mid-body: the socket is closed, the length is short.
    outgoing.destroy();
  });
  // Tells @hono/node-server the response is on its way; the status keeps metrics and logs right.
  return new Response(null, { status, headers: RESPONSE_ALREADY_SENT.headers });
}
