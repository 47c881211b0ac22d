import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ortDist = join(dirname(fileURLToPath(import.meta.url)), '../../node_modules/onnxruntime-web/dist');
const TYPES: Record<string, string> = { mjs: 'text/javascript', wasm: 'application/wasm' };

/**
 * onnxruntime-web's WASM files on a loopback origin of their own that leaves the first `hold`
 * requests unfinished (headers sent, no body, the connection kept open): an engine start that
 * cannot complete, as a stuck WASM start in Firefox's worker is, for as long as its worker lives.
 * Later requests get the files, with the CORS and CORP headers a cross-origin isolated worker needs.
 */
export class StallingAssets {
  private server: Server | null = null;
  private readonly held = new Set<ServerResponse>();
  url = '';
  requests: Array<{ path: string; held: boolean }> = [];

  /** `releaseAfterMs`: a held request's connection is cut after this long (default: never). */
  constructor(
    private hold: number,
    private readonly releaseAfterMs?: number,
  ) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
    return this.url;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const cors = {
      'access-control-allow-origin': '*',
      'cross-origin-resource-policy': 'cross-origin',
    };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'access-control-allow-headers': '*' }).end();
      return;
    }
    const file = join(ortDist, basename(path));
    if (!existsSync(file)) {
      res.writeHead(404, cors).end();
      return;
    }
    const held = this.hold > 0;
    this.requests.push({ path, held });
    res.writeHead(200, {
      ...cors,
      'content-type': TYPES[file.split('.').pop() ?? ''] ?? 'application/octet-stream',
      'content-length': statSync(file).size,
      // Never cached: Firefox makes a second request for a URL wait on a first one still open.
      'cache-control': 'no-store',
    });
    if (held) {
      // Headers, then no body, ever: the import waits for bytes that never come.
      this.hold--;
      this.held.add(res);
      res.on('close', () => this.held.delete(res));
      res.flushHeaders();
      // Firefox queues a later request for the same URL behind this one, even from another
      // worker: cut, it lets that one through (the worker that asked first is gone by then).
      if (this.releaseAfterMs !== undefined) setTimeout(() => res.destroy(), this.releaseAfterMs);
      return;
    }
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  }

  async stop(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
