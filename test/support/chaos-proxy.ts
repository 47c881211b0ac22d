import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ChaosRules {
  /** Destroy the connection of every chunk request after this many chunk responses went through. */
  cutChunksAfter?: number | null;
  /** Flip a byte in this chunk's body. */
  tamperChunk?: string | null;
  /** Serve this body for the manifest instead of the server's (tampered, replayed, expired…). */
  manifestBody?: string | null;
  /** Refuse every request, as if the network were gone. */
  offline?: boolean;
  /** Forward telemetry to the server, then drop the connection before its acknowledgement. */
  dropTelemetryAcks?: boolean;
  /**
   * Serve this many chunk requests (counted from when the rule is set), then answer each later
   * one with its headers and half its body and keep it open until the client goes away: a
   * download caught mid-transfer, for as long as the device lives (until its worker is killed).
   */
  holdChunksAfter?: number | null;
}

export interface ProxyLogEntry {
  method: string;
  path: string;
  status: number;
  bytes: number;
}

/**
 * A reverse proxy in front of a real update server that misbehaves on demand, so browser tests
 * can cut downloads, tamper with bytes and replay manifests exactly where an attacker or a bad
 * network would: between the device and the server.
 */
export class ChaosProxy {
  rules: ChaosRules = {};
  log: ProxyLogEntry[] = [];
  /** Every manifest body that passed through, by version: material for replay attacks. */
  readonly manifests = new Map<number, string>();
  private chunkResponses = 0;
  private chunkRequests = 0;
  /** Chunk responses held open under `holdChunksAfter` whose client is still connected. */
  heldOpen = 0;
  private server: Server | null = null;
  url = '';

  constructor(public target: string) {}

  async start(port = 0): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  setRules(rules: ChaosRules): void {
    this.rules = { ...this.rules, ...rules };
    this.chunkResponses = 0;
    this.chunkRequests = 0;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url ?? '/';
    const isChunk = path.startsWith('/v1/chunks/');
    if (this.rules.offline) {
      req.socket.destroy();
      return;
    }
    if (
      isChunk &&
      req.method === 'GET' &&
      this.rules.cutChunksAfter != null &&
      this.chunkResponses >= this.rules.cutChunksAfter
    ) {
      // Cut mid-body, as a dropped connection does: headers and half the bytes, then nothing.
      const sent = await this.writeHalfBody(req, res, path);
      req.socket.destroy();
      this.log.push({ method: req.method, path, status: 0, bytes: sent });
      return;
    }
    // Counted on arrival, before any await, so exactly the first `holdChunksAfter` go through.
    if (
      isChunk &&
      req.method === 'GET' &&
      this.rules.holdChunksAfter != null &&
      this.chunkRequests++ >= this.rules.holdChunksAfter
    ) {
      let sent = 0;
      let state: 'writing' | 'held' | 'closed' = 'writing';
      res.on('close', () => {
        if (state === 'held') this.heldOpen -= 1;
        state = 'closed';
        this.log.push({ method: 'GET', path, status: 0, bytes: sent });
      });
      sent = await this.writeHalfBody(req, res, path);
      if (state === 'writing') {
        state = 'held';
        this.heldOpen += 1;
      }
      return;
    }
    // GET only: the CORS preflight (If-None-Match is not a simple header) goes to the server.
    if (path.endsWith('/manifest') && req.method === 'GET' && this.rules.manifestBody) {
      const payload = new TextEncoder().encode(this.rules.manifestBody);
      res.writeHead(200, {
        'content-type': 'application/json',
        'access-control-allow-origin': '*',
        'access-control-expose-headers': 'ETag',
        'cross-origin-resource-policy': 'cross-origin',
      });
      res.end(payload);
      this.log.push({ method: req.method ?? 'GET', path, status: 200, bytes: payload.length });
      return;
    }
    const body = await readBody(req);
    let upstream: Response;
    try {
      upstream = await fetch(`${this.target}${path}`, {
        method: req.method,
        headers: forwardHeaders(req),
        body: body.length > 0 ? (body as Uint8Array<ArrayBuffer>) : undefined,
      });
    } catch {
      res.writeHead(502).end();
      return;
    }
    let payload = new Uint8Array(await upstream.arrayBuffer());
    if (path === '/v1/telemetry' && req.method === 'POST' && this.rules.dropTelemetryAcks) {
      // The server has committed the batch; the device never hears so and will send it again.
      this.log.push({ method: req.method, path, status: 0, bytes: 0 });
      req.socket.destroy();
      return;
    }
    const headers = new Headers(upstream.headers);
    if (path.endsWith('/manifest') && upstream.status === 200) {
      const text = new TextDecoder().decode(payload);
      const version = (JSON.parse(text) as { signed: { version: number } }).signed.version;
      this.manifests.set(version, text);
    }
    if (isChunk && upstream.status === 200) {
      this.chunkResponses += 1;
      if (this.rules.tamperChunk && path.endsWith(this.rules.tamperChunk)) {
        payload = payload.slice();
        payload[payload.length >> 1]! ^= 0xff;
      }
    }
    headers.delete('content-length');
    headers.delete('content-encoding');
    headers.delete('transfer-encoding');
    res.writeHead(upstream.status, Object.fromEntries(headers));
    res.end(payload);
    this.log.push({ method: req.method ?? 'GET', path, status: upstream.status, bytes: payload.length });
  }

  /** Fetches the chunk upstream and sends its headers (full length) and the first half of it. */
  private async writeHalfBody(req: IncomingMessage, res: ServerResponse, path: string): Promise<number> {
    const upstream = await fetch(`${this.target}${path}`, { headers: forwardHeaders(req) });
    const payload = new Uint8Array(await upstream.arrayBuffer());
    const half = payload.subarray(0, payload.length >> 1);
    const headers = new Headers(upstream.headers);
    headers.delete('transfer-encoding');
    headers.delete('content-encoding');
    headers.set('content-length', String(payload.length));
    res.writeHead(upstream.status, Object.fromEntries(headers));
    await new Promise<void>((resolve) => res.write(half, () => resolve()));
    return half.length;
  }
}

function forwardHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === 'host' || name === 'connection' || name === 'content-length')
      continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

async function readBody(req: IncomingMessage): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return new Uint8Array(Buffer.concat(parts));
}
