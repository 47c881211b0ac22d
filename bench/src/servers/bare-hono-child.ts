// The ceiling: a bare Hono route on @hono/node-server returning the same manifest bytes (with the
// same ETag and a 304 on a match) and the same chunk bytes from memory; no registry, no
// middleware. Reads its bytes from the JSON file named by argv[2].
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { TelemetryBatchSchema } from '@edgeship/protocol';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const spec = JSON.parse(await readFile(process.argv[2]!, 'utf8')) as {
  etag: string;
  manifestBase64: string;
  chunkBase64: string;
};
const manifest = new Uint8Array(Buffer.from(spec.manifestBase64, 'base64'));
const chunk = new Uint8Array(Buffer.from(spec.chunkBase64, 'base64'));
const app = new Hono();
app.get('/manifest', (c) => {
  c.header('ETag', spec.etag);
  if (c.req.header('if-none-match') === spec.etag) return c.body(null, 304);
  c.header('Content-Type', 'application/json; charset=utf-8');
  return c.body(manifest, 200);
});
// Telemetry ceiling: what ingest costs before storage (parse and the protocol's schema check).
app.post('/telemetry', async (c) => {
  const parsed = TelemetryBatchSchema.safeParse(JSON.parse(await c.req.text()));
  if (!parsed.success) return c.json({ error: 'invalid' }, 400);
  return c.json({ status: 'accepted' }, 202);
});
app.get('/chunk', (c) => {
  c.header('Content-Type', 'application/octet-stream');
  return c.body(chunk, 200);
});
const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
server.once('listening', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(
    `${JSON.stringify({ event: 'listening', url: `http://127.0.0.1:${port}`, pid: process.pid })}\n`,
  );
});
process.once('SIGTERM', () => process.exit(0));
