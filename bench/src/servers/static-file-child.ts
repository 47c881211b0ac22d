// The chunk ceiling: a plain node:http static file server sending one file with
// fs.createReadStream (what nginx-less deployments and `npx serve` do), no framework. argv[2] is
// the file; every path answers with it.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';

const file = process.argv[2]!;
const { size } = await stat(file);
const server = createServer((_req, res) => {
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(size),
    'Cache-Control': 'public, max-age=31536000, immutable',
  });
  pipeline(createReadStream(file), res, () => {});
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(
    `${JSON.stringify({ event: 'listening', url: `http://127.0.0.1:${port}`, pid: process.pid })}\n`,
  );
});
process.once('SIGTERM', () => process.exit(0));
