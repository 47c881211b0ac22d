import { LengthMismatchError, TimeoutError } from '@edgeship/protocol/errors';
import { PackWriterHost } from './pack-writer.ts';
import { isQuotaError, storageError } from './storage-pressure.ts';

/** Reads and writes at offsets of one pack, through one handle, until closed. */
export interface PackAccess {
  read(out: Uint8Array, offset: number): Promise<void>;
  close(): void | Promise<void>;
}

export interface PackWriter extends PackAccess {
  /** Writes each piece at its offset (not yet flushed); a writer in another worker may report a failure at flush. */
  write(pieces: ReadonlyArray<{ offset: number; bytes: Uint8Array }>): void | Promise<void>;
  /** On disk, with every write before it, when this settles. */
  flush(): void | Promise<void>;
}

/**
 * Release files as plain files in the Origin Private File System, one per file content (named
 * by the file's signed SHA-256), written chunk by chunk at the chunks' offsets as they arrive
 * and read back in one call. Which bytes are there, and verified, is recorded in IndexedDB by
 * ModelStore (its `places`): a pack on its own proves nothing.
 *
 * Writes use synchronous access handles, which exist only in dedicated workers (where the runtime
 * runs); a page can still read packs through File snapshots. Handles are opened once per file and
 * kept while a download writes it: Chromium 156 here stopped answering createSyncAccessHandle
 * after ~120 open/close cycles in one worker (the call never settled), so nothing opens a handle
 * per chunk or per write.
 */
export class Packs {
  /** How long a sync access handle is waited for (accessHandle); a reader then reads a File snapshot. */
  static handleWaitMs = 5_000;

  private readonly writers = new Map<string, Promise<PackWriter>>();
  /** The nested worker writes go through (pack-writer.ts), once started; null: written here. */
  private host: Promise<PackWriterHost | null> | null = null;

  private constructor(
    private readonly dir: FileSystemDirectoryHandle,
    /** Sync access handles exist here (a dedicated worker): packs can be written. */
    readonly writable: boolean,
    private readonly writerUrl: string | URL | undefined,
  ) {}

  /**
   * The pack directory `name`, or null where OPFS is not available or (without `write`) no pack
   * was ever written. With `write` it is created, and writable where sync access handles exist.
   * With `writerUrl` (a worker script that serves pack-writer-serve.ts under PACK_WRITER_NAME, as
   * the runtime's does) writes are made in a nested worker started from it, else on this thread.
   */
  static async open(
    name: string,
    options: { write: boolean; writerUrl?: string | URL },
  ): Promise<Packs | null> {
    const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    const handle = (globalThis as { FileSystemFileHandle?: { prototype: object } }).FileSystemFileHandle;
    if (typeof storage?.getDirectory !== 'function' || !handle) return null;
    try {
      const root = await storage.getDirectory();
      const dir = await root.getDirectoryHandle(name, { create: options.write });
      const writable = options.write && 'createSyncAccessHandle' in handle.prototype;
      return new Packs(dir, writable, writable ? options.writerUrl : undefined);
    } catch {
      // No such directory, or a private window that refuses OPFS (SecurityError): IndexedDB works.
      return null;
    }
  }

  /**
   * The writer of pack `file` (created if new), opened once and shared until closeWriters: it
   * holds the pack's lock, so writers in other tabs, and a garbage collection removing the pack,
   * wait for it.
   */
  writer(file: string): Promise<PackWriter> {
    let writer = this.writers.get(file);
    if (!writer) {
      writer = this.startWriter(file);
      this.writers.set(file, writer);
      writer.catch(() => this.writers.delete(file));
    }
    return writer;
  }

  /** Flushes the open writers of `files`. */
  async flush(files: Iterable<string>): Promise<void> {
    for (const file of files) {
      const writer = this.writers.get(file);
      if (writer) await (await writer).flush();
    }
  }

  /** Closes the open writers of `files` (default: all), releasing their packs' locks. */
  async closeWriters(files?: Iterable<string>): Promise<void> {
    const open: Array<Promise<PackWriter>> = [];
    for (const file of files ?? [...this.writers.keys()]) {
      const writer = this.writers.get(file);
      if (!writer) continue;
      this.writers.delete(file);
      open.push(writer);
    }
    for (const writer of await Promise.allSettled(open))
      if (writer.status === 'fulfilled') await writer.value.close();
  }

  /** True once writes go through a nested writer worker (the first writer started it); false: on this thread. */
  async writesInWorker(): Promise<boolean> {
    return (await this.host) != null;
  }

  /** Closes every writer and stops the writer worker, if one was started. */
  async close(): Promise<void> {
    await this.closeWriters();
    const host = await this.host;
    this.host = null;
    host?.terminate();
  }

  /**
   * One pack opened for reading until closed: this worker's writer when it holds the pack, else
   * a read-only handle (Chromium 121+; elsewhere the option is ignored and the handle is
   * exclusive), else (a page, or the pack held by another tab) a File snapshot.
   */
  async reader(file: string): Promise<PackAccess> {
    const writer = this.writers.get(file);
    if (writer) {
      const w = await writer;
      return { read: (out, offset) => w.read(out, offset), close: () => {} };
    }
    if (this.writable) {
      try {
        return handleAccess(file, await this.accessHandle(file, false));
      } catch (error) {
        // Held by another tab's writer, or no handle in time: a snapshot reads it all the same.
        if (!isLocked(error) && !(error instanceof TimeoutError)) throw packError(file, error);
      }
    }
    const snapshot = await (await this.fileHandle(file, false)).getFile().catch((e: unknown) => {
      throw packError(file, e);
    });
    return {
      async read(out, offset) {
        const blob = snapshot.slice(offset, offset + out.length);
        if (blob.size !== out.length) throw shortPack(file, blob.size, out.length, offset);
        out.set(new Uint8Array(await blob.arrayBuffer()));
      },
      close: () => {},
    };
  }

  /**
   * Readers opened as needed, one per pack, for an operation that reads many ranges of a few
   * packs (copying shared chunks, checking a file): `done` closes them all.
   */
  readers(): { read(file: string, out: Uint8Array, offset: number): Promise<void>; done(): void } {
    const open = new Map<string, Promise<PackAccess>>();
    return {
      read: async (file, out, offset) => {
        let reader = open.get(file);
        if (!reader) {
          reader = this.reader(file);
          open.set(file, reader);
        }
        await (await reader).read(out, offset);
      },
      done() {
        for (const reader of open.values())
          reader.then(
            (r) => r.close(),
            () => {},
          );
        open.clear();
      },
    };
  }

  /** Reads `out.length` bytes of pack `file` from `offset` into `out` (one reader, opened and closed). */
  async readInto(file: string, out: Uint8Array, offset = 0): Promise<void> {
    const reader = await this.reader(file);
    try {
      await reader.read(out, offset);
    } finally {
      reader.close();
    }
  }

  /** Pack names present, whatever IndexedDB says of them. */
  async list(): Promise<string[]> {
    const names: string[] = [];
    for await (const name of (this.dir as unknown as { keys(): AsyncIterable<string> }).keys())
      names.push(name);
    return names;
  }

  /**
   * Removes pack `file` under its lock if `stillUnused` says so once the lock is held (a download
   * may have started writing it again since the caller decided). This worker's writer of it, if
   * any, is closed first.
   */
  async remove(file: string, stillUnused: () => Promise<boolean> = async () => true): Promise<void> {
    const writer = this.writers.get(file);
    this.writers.delete(file);
    if (writer)
      await writer.then(
        (w) => w.close(),
        () => {},
      );
    await withLock(this.lockName(file), async () => {
      if (!(await stillUnused())) return;
      try {
        await this.dir.removeEntry(file);
      } catch (error) {
        if ((error as { name?: string }).name !== 'NotFoundError') throw packError(file, error);
      }
    });
  }

  /** A writer of `file` in the writer worker when one answers, else on this thread. */
  private async startWriter(file: string): Promise<PackWriter> {
    if (this.writerUrl === undefined) return this.openWriter(file);
    for (let attempt = 0; ; attempt++) {
      this.host ??= PackWriterHost.start(this.writerUrl, this.dir.name);
      const host = await this.host;
      if (!host) return this.openWriter(file);
      try {
        return await host.open(file);
      } catch (error) {
        // A handle that never came: a fresh writer worker (when this one holds no other pack)
        // is what got one where the stuck worker did not.
        if (!(error instanceof TimeoutError) || attempt > 0 || host.openWriters > 0) throw error;
        this.host = null;
        host.terminate();
      }
    }
  }

  private lockName(file: string): string {
    return `edgeship-pack:${this.dir.name}/${file}`;
  }

  /** Takes the pack's lock and a read-write handle, both held until the writer is closed. */
  private openWriter(file: string): Promise<PackWriter> {
    return new Promise<PackWriter>((resolve, reject) => {
      let release = () => {};
      const held = new Promise<void>((r) => (release = r));
      withLock(this.lockName(file), async () => {
        let handle: FileSystemSyncAccessHandle;
        try {
          handle = await retryLocked(() => this.accessHandle(file, true));
        } catch (error) {
          reject(packError(file, error));
          return;
        }
        const access = handleAccess(file, handle);
        let closed = false;
        resolve({
          read: access.read,
          write(pieces) {
            try {
              for (const { offset, bytes } of pieces) {
                const written = handle.write(bytes, { at: offset });
                if (written !== bytes.length) {
                  throw new Error(`pack ${file}: wrote ${written} of ${bytes.length} bytes at ${offset}`);
                }
              }
            } catch (error) {
              throw packError(file, error);
            }
          },
          flush() {
            try {
              handle.flush();
            } catch (error) {
              throw packError(file, error);
            }
          },
          close() {
            if (closed) return;
            closed = true;
            handle.close();
            release();
          },
        });
        await held;
      }).catch(reject);
    });
  }

  private async fileHandle(file: string, create: boolean): Promise<FileSystemFileHandle> {
    try {
      return await this.dir.getFileHandle(file, { create });
    } catch (error) {
      throw packError(file, error);
    }
  }

  /**
   * A sync access handle, or E_TIMEOUT once Packs.handleWaitMs pass without one (a handle that
   * comes later is closed). Chromium 156 here sometimes never settled the call: after ~120
   * open/close cycles in one worker, and in about one cold start in fifteen (a fresh worker), where
   * the page's engine-start bound (client.ts, ~220 s for 200 MB) then replaced the stuck worker.
   */
  private async accessHandle(file: string, write: boolean): Promise<FileSystemSyncAccessHandle> {
    const handle = await this.fileHandle(file, write);
    const options = write ? undefined : ({ mode: 'read-only' } as object);
    const created = (
      handle as unknown as { createSyncAccessHandle(o?: object): Promise<FileSystemSyncAccessHandle> }
    ).createSyncAccessHandle(options);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        created.then(
          (h) => h.close(),
          () => {},
        );
        reject(new TimeoutError(`pack ${file}: no sync access handle within ${Packs.handleWaitMs} ms`));
      }, Packs.handleWaitMs);
    });
    try {
      return await Promise.race([created, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function handleAccess(file: string, handle: FileSystemSyncAccessHandle): PackAccess {
  return {
    async read(out, offset) {
      const read = handle.read(out, { at: offset });
      if (read !== out.length) throw shortPack(file, read, out.length, offset);
    },
    close: () => handle.close(),
  };
}

/** Runs `work` under the Web Lock `name` (one at a time across this origin's tabs and workers). */
async function withLock<T>(name: string, work: () => Promise<T>): Promise<T> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  return locks ? locks.request(name, work) : work();
}

/** A reader in another tab may hold the file for a moment: retried a few times before failing. */
async function retryLocked<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isLocked(error) || attempt >= 8) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt));
    }
  }
}

function isLocked(error: unknown): boolean {
  return (error as { name?: string } | null)?.name === 'NoModificationAllowedError';
}

function shortPack(file: string, got: number, wanted: number, offset: number) {
  return new LengthMismatchError(`pack ${file} holds ${got} of the ${wanted} bytes wanted at ${offset}`);
}

/**
 * E_QUOTA for a full disk; a pack that is gone reads as stored bytes of the wrong length (E_LENGTH,
 * as a short IndexedDB value does), so the store drops its places and downloads them again.
 */
function packError(file: string, error: unknown): unknown {
  if (isQuotaError(error)) return storageError(error);
  if ((error as { name?: string } | null)?.name === 'NotFoundError') {
    return new LengthMismatchError(`pack ${file} is not stored`, { cause: error });
  }
  return error;
}
