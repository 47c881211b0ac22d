import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the mirror answers one request with; `upstream()` fetches the real server's answer. */
export type MirrorHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  upstream: () => Promise<{ status: number; headers: Headers; body: Uint8Array }>,
) => Promise<void> | void;

export interface MirrorLogEntry {
  path: string;
  /** Body bytes the mirror wrote before the response ended or the client went away. */
  bytes: number;
  /** The ETag the device asked with: what it remembered of an earlier answer. */
  ifNoneMatch: string | null;
}

/**
 * A mirror on loopback between the device and a real update server, controlled by the attacker:
 * it passes everything through unless a handler for manifests, release documents or chunks says
 * otherwise. The
 * TUF threat model's adversary: "can respond to client requests, whether by acting as a
 * man-in-the-middle or through compromising repository mirrors".
 */
export class AttackerMirror {
  manifest: MirrorHandler | null = null;
  chunk: MirrorHandler | null = null;
  /** Signed release documents, `GET /v1/releases/by-hash/:sha256`. */
  releaseDocument: MirrorHandler | null = null;
  log: MirrorLogEntry[] = [];
  private server: Server | null = null;
  url = '';

  constructor(public target: string) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }

  /** Passes everything through again. */
  honest(): void {
    this.manifest = null;
    this.chunk = null;
    this.releaseDocument = null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url ?? '/';
    const ifNoneMatch = req.headers['if-none-match'];
    const entry: MirrorLogEntry = {
      path,
      bytes: 0,
      ifNoneMatch: typeof ifNoneMatch === 'string' ? ifNoneMatch : null,
    };
    this.log.push(entry);
    const write = res.write.bind(res);
    res.write = ((chunk: Uint8Array | string, ...rest: never[]) => {
      entry.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      return write(chunk, ...rest);
    }) as typeof res.write;
    const upstream = async () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === 'string' && name !== 'host' && name !== 'connection') headers[name] = value;
      }
      const response = await fetch(`${this.target}${path}`, { method: req.method, headers });
      return {
        status: response.status,
        headers: response.headers,
        body: new Uint8Array(await response.arrayBuffer()),
      };
    };
    const handler = path.endsWith('/manifest')
      ? this.manifest
      : path.startsWith('/v1/chunks/')
        ? this.chunk
        : path.startsWith('/v1/releases/by-hash/')
          ? this.releaseDocument
          : null;
    try {
      if (handler) return await handler(req, res, upstream);
      const answer = await upstream();
      const headers = Object.fromEntries(answer.headers);
      delete headers['content-length'];
      delete headers['content-encoding'];
      delete headers['transfer-encoding'];
      res.writeHead(answer.status, headers);
      res.write(answer.body);
      res.end();
    } catch {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    }
  }
}

/** Serves `body`, one byte every `everyMs`, until done or the client goes away (slow retrieval). */
export function drip(res: ServerResponse, body: Uint8Array, everyMs: number): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
  return new Promise((resolve) => {
    let sent = 0;
    const timer = setInterval(() => {
      if (sent >= body.length) {
        clearInterval(timer);
        res.end();
        resolve();
        return;
      }
      res.write(body.subarray(sent, sent + 1));
      sent += 1;
    }, everyMs);
    res.on('close', () => {
      clearInterval(timer);
      resolve();
    });
  });
}

/** Sends spaces without end, 64 KiB at a time, until the client goes away (endless data). */
export function endless(res: ServerResponse, contentType = 'application/json'): Promise<void> {
  res.writeHead(200, { 'content-type': contentType });
  const block = new Uint8Array(64 * 1024).fill(0x20);
  // Capped, so a client that never stops reading cannot keep a test running forever.
  const limit = 256 * 1024 * 1024;
  let written = 0;
  return new Promise((resolve) => {
    let open = true;
    res.on('close', () => {
      open = false;
      resolve();
    });
    const pump = () => {
      while (open && written < limit) {
        written += block.length;
        if (!res.write(block)) {
          res.once('drain', pump);
          return;
        }
      }
      if (open) res.end();
    };
    pump();
  });
}

/** Answers with headers and never a byte of body (a connection held open by the attacker). */
export function hang(res: ServerResponse): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  res.flushHeaders();
  return new Promise((resolve) => res.on('close', () => resolve()));
}

/** Serves `text` as the manifest, with an ETag so a careless device might cache it. */
export function serveManifest(text: string, etag = '"attacker"'): MirrorHandler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', etag });
    res.end(text);
  };
}
