import { deserializeError, type ErrorData, TimeoutError } from '@edgeship/protocol/errors';
import type { PackWriter } from './packs.ts';

/** The worker name under which the runtime's worker script writes packs instead of serving the API. */
export const PACK_WRITER_NAME = 'edgeship-pack-writer';

export type PackWriterRequest = { id: number; dir: string; file: string } & (
  | { op: 'ping' }
  | { op: 'open' }
  | { op: 'write'; pieces: Array<{ offset: number; bytes: Uint8Array }> }
  | { op: 'flush' }
  | { op: 'read'; offset: number; length: number }
  | { op: 'close' }
);

export type PackWriterReply =
  | { id: number; ok: true; bytes?: Uint8Array }
  | { id: number; ok: false; error: ErrorData };

/** Bytes sent to the writer and not yet written, past which a write waits (memory stays bounded on a slow disk). */
const HIGH_WATER_BYTES = 32 * 1024 * 1024;
/** A writer worker that does not answer its first message within this is not used. */
const START_TIMEOUT_MS = 10_000;

/**
 * Pack writes in a nested worker. A sync access handle's write() blocks the thread it runs on
 * (2.2 s per 200 MB measured here), and the downloader's lanes read response bodies on that same
 * thread: written in place, the writes and the fetches took turns. Here the pack's handle (and
 * its Web Lock) live in a nested copy of the worker script (as probes do, so an app ships no
 * extra script), copies of the chunk bytes are transferred to it (the download still hashes and
 * assembles the originals), and the download's thread only fetches and hashes. Writes are acknowledged as they are made, flushes answered after the writes before
 * them: a place recorded after flush() names bytes on disk, as with writes made in place.
 */
export class PackWriterHost {
  private readonly calls = new Map<
    number,
    { resolve: (bytes: Uint8Array | undefined) => void; reject: (error: unknown) => void }
  >();
  private nextId = 0;
  private failure: Error | null = null;
  /** Packs this worker holds open for writing. */
  openWriters = 0;

  private constructor(
    private readonly worker: Worker,
    private readonly dir: string,
  ) {
    worker.onmessage = (event: MessageEvent<PackWriterReply>) => {
      const reply = event.data;
      const call = this.calls.get(reply.id);
      if (!call) return;
      this.calls.delete(reply.id);
      if (reply.ok) call.resolve(reply.bytes);
      else call.reject(deserializeError(reply.error));
    };
    worker.onerror = (event) => {
      event.preventDefault?.();
      this.fail(new Error(`the pack writer worker failed: ${event.message || 'no message'}`));
    };
  }

  /** Starts the writer worker from `url` (a script that calls servePackWriter under PACK_WRITER_NAME); null if it does not answer. */
  static async start(url: string | URL, dir: string): Promise<PackWriterHost | null> {
    let host: PackWriterHost;
    try {
      host = new PackWriterHost(new Worker(url, { type: 'module', name: PACK_WRITER_NAME }), dir);
    } catch {
      return null;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TimeoutError(`the pack writer did not start within ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
    });
    try {
      // A script that does not serve the writer never answers (or fails to load): not used.
      await Promise.race([host.call({ op: 'ping', file: '' }), late]);
      return host;
    } catch {
      host.terminate();
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The writer of pack `file` (its lock and handle held in the writer worker until close). */
  async open(file: string): Promise<PackWriter> {
    await this.call({ op: 'open', file });
    this.openWriters += 1;
    return new RemotePackWriter(this, file, () => {
      this.openWriters -= 1;
    });
  }

  call(
    request: { file: string } & DistributiveOmit<PackWriterRequest, 'id' | 'dir'>,
    transfer: Transferable[] = [],
  ): Promise<Uint8Array | undefined> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id, dir: this.dir }, transfer);
    });
  }

  terminate(): void {
    this.fail(new Error('the pack writer was stopped'));
    this.worker.terminate();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const call of this.calls.values()) call.reject(this.failure);
    this.calls.clear();
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** One pack's writer, in the writer worker. */
class RemotePackWriter implements PackWriter {
  private inFlight = 0;
  private error: unknown = null;
  private waiting: Array<() => void> = [];

  private closed = false;

  constructor(
    private readonly host: PackWriterHost,
    private readonly file: string,
    private readonly onClose: () => void,
  ) {}

  /** Sends copies of the pieces (the caller keeps using its bytes); waits while too many bytes are unwritten. */
  async write(pieces: ReadonlyArray<{ offset: number; bytes: Uint8Array }>): Promise<void> {
    this.throwError();
    const copies = pieces.map(({ offset, bytes }) => ({ offset, bytes: bytes.slice() }));
    const size = copies.reduce((n, c) => n + c.bytes.length, 0);
    this.inFlight += size;
    this.host
      .call(
        { op: 'write', file: this.file, pieces: copies },
        copies.map((c) => c.bytes.buffer),
      )
      .catch((error: unknown) => {
        this.error ??= error;
      })
      .finally(() => {
        this.inFlight -= size;
        if (this.inFlight <= HIGH_WATER_BYTES) for (const wake of this.waiting.splice(0)) wake();
      });
    while (this.inFlight > HIGH_WATER_BYTES && this.error === null) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.throwError();
  }

  /** Answered after every write sent before it: a failed write is thrown here. */
  async flush(): Promise<void> {
    await this.host.call({ op: 'flush', file: this.file });
    this.throwError();
  }

  async read(out: Uint8Array, offset: number): Promise<void> {
    const bytes = await this.host.call({ op: 'read', file: this.file, offset, length: out.length });
    out.set(bytes!);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    await this.host.call({ op: 'close', file: this.file }).catch(() => {});
  }

  private throwError(): void {
    if (this.error !== null) throw this.error;
  }
}
