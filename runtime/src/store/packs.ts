import { LengthMismatchError } from '@edgeship/protocol/errors';
import { isQuotaError, storageError } from './storage-pressure.ts';

/**
 * Release files as plain files in the Origin Private File System, one per file content (named
 * by the file's signed SHA-256), written chunk by chunk at the chunks' offsets as they arrive
 * and read back in one call: a 200 MB file reads in ~0.5 s here against 3.5-4.5 s as 700
 * IndexedDB values (bench storage). Which bytes are there, and verified, is recorded in
 * IndexedDB by ModelStore (its `places`): a pack on its own proves nothing.
 *
 * Uses the synchronous access handles, which exist only in dedicated workers (where the runtime
 * runs); elsewhere `open` answers null and the store keeps chunks in IndexedDB.
 */
export class Packs {
  private constructor(
    private readonly dir: FileSystemDirectoryHandle,
    /** Sync access handles exist here (a dedicated worker): packs can be written. */
    readonly writable: boolean,
  ) {}

  /** The pack directory `name` (created), or null where OPFS is not available. */
  static async open(name: string): Promise<Packs | null> {
    const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    const handle = (globalThis as { FileSystemFileHandle?: { prototype: object } }).FileSystemFileHandle;
    if (typeof storage?.getDirectory !== 'function' || !handle) return null;
    try {
      const root = await storage.getDirectory();
      const dir = await root.getDirectoryHandle(name, { create: true });
      return new Packs(dir, 'createSyncAccessHandle' in handle.prototype);
    } catch {
      // Private windows in some browsers refuse OPFS (SecurityError): IndexedDB still works.
      return null;
    }
  }

  /**
   * Runs `work` holding pack `file`'s lock: writers in this worker and in other tabs take turns
   * (an access handle is exclusive), and a removal cannot slip between a write and its record.
   */
  async exclusively<T>(file: string, work: () => Promise<T>): Promise<T> {
    const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
    if (!locks) return work();
    return locks.request(`edgeship-pack:${this.dir.name}/${file}`, work);
  }

  /** Writes each piece at its offset of pack `file` (created if new) and flushes before resolving. */
  async write(file: string, pieces: ReadonlyArray<{ offset: number; bytes: Uint8Array }>): Promise<void> {
    await retryLocked(async () => {
      const handle = await this.accessHandle(file, true);
      try {
        for (const { offset, bytes } of pieces) {
          const written = handle.write(bytes, { at: offset });
          if (written !== bytes.length) {
            throw new Error(`pack ${file}: wrote ${written} of ${bytes.length} bytes at ${offset}`);
          }
        }
        handle.flush();
      } catch (error) {
        throw storageError(error);
      } finally {
        handle.close();
      }
    });
  }

  /** Reads `out.length` bytes of pack `file` from `offset` into `out`. */
  async readInto(file: string, out: Uint8Array, offset = 0): Promise<void> {
    let handle: FileSystemSyncAccessHandle | null = null;
    if (this.writable) {
      try {
        handle = await this.accessHandle(file, false);
      } catch (error) {
        if (!isLocked(error)) throw packError(file, error);
      }
    }
    if (handle === null) {
      // A page (no access handles), or another tab holds the file (a write, or a reader where
      // read-only handles do not exist): a File snapshot reads without a handle.
      const fileHandle = await this.fileHandle(file, false);
      const blob = (await fileHandle.getFile()).slice(offset, offset + out.length);
      if (blob.size !== out.length) {
        throw new LengthMismatchError(
          `pack ${file} holds ${blob.size} of the ${out.length} bytes wanted at ${offset}`,
        );
      }
      out.set(new Uint8Array(await blob.arrayBuffer()));
      return;
    }
    try {
      const read = handle.read(out, { at: offset });
      if (read !== out.length) {
        throw new LengthMismatchError(
          `pack ${file} holds ${read} of the ${out.length} bytes wanted at ${offset}`,
        );
      }
    } finally {
      handle.close();
    }
  }

  /** Pack names present, whatever IndexedDB says of them (garbage collection compares the two). */
  async list(): Promise<string[]> {
    const names: string[] = [];
    for await (const name of (this.dir as unknown as { keys(): AsyncIterable<string> }).keys())
      names.push(name);
    return names;
  }

  async remove(file: string): Promise<void> {
    try {
      await this.dir.removeEntry(file);
    } catch (error) {
      if ((error as { name?: string }).name !== 'NotFoundError') throw packError(file, error);
    }
  }

  private async fileHandle(file: string, create: boolean): Promise<FileSystemFileHandle> {
    try {
      return await this.dir.getFileHandle(file, { create });
    } catch (error) {
      throw packError(file, error);
    }
  }

  private async accessHandle(file: string, write: boolean): Promise<FileSystemSyncAccessHandle> {
    const handle = await this.fileHandle(file, write);
    // Read-only handles (Chromium 121+) let tabs read one file at once; elsewhere the option is
    // ignored and the handle is exclusive.
    const options = write ? undefined : ({ mode: 'read-only' } as object);
    return (
      handle as unknown as { createSyncAccessHandle(o?: object): Promise<FileSystemSyncAccessHandle> }
    ).createSyncAccessHandle(options);
  }
}

/** A reader in another tab may hold the file for a moment: retried a few times before failing. */
async function retryLocked(work: () => Promise<void>): Promise<void> {
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
