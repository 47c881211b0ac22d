// Big-file storage and hashing, measured where the runtime does them: in a dedicated worker.
// The data is random (model weights do not compress), cut into 256 KiB chunks, the chunker's
// average size, and held in memory so only the operation under test is timed.
import { sha256 } from '@noble/hashes/sha2.js';
import { expose } from 'comlink';
import { createSHA256 } from 'hash-wasm';

export type HashKind = 'noble' | 'hash-wasm' | 'subtle-per-chunk' | 'subtle-whole';
export type StorageKind =
  | 'idb-arraybuffer'
  | 'idb-blob'
  | 'idb-blob-joined'
  | 'opfs-file-per-chunk'
  | 'opfs-one-file';

const CHUNK = 256 * 1024;
let chunks: Array<Uint8Array<ArrayBuffer>> = [];
let whole: Uint8Array<ArrayBuffer> | undefined;

function randomChunk(size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  // getRandomValues fills at most 65,536 bytes a call.
  for (let i = 0; i < size; i += 65_536) crypto.getRandomValues(out.subarray(i, Math.min(size, i + 65_536)));
  return out;
}

function idbRequest<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function idbDone(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
}

async function openDb(name: string): Promise<IDBDatabase> {
  const request = indexedDB.open(name, 1);
  request.onupgradeneeded = () => request.result.createObjectStore('chunks');
  return idbRequest(request);
}

async function deleteDb(name: string): Promise<void> {
  await new Promise((resolve) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = request.onerror = request.onblocked = resolve;
  });
}

/** Four writers at a time, as the downloader's four lanes store chunks as they arrive. */
async function inLanes(count: number, work: (i: number) => Promise<void>, lanes = 4): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      for (let i = next++; i < count; i = next++) await work(i);
    }),
  );
}

async function opfsDir(name: string, create = true): Promise<FileSystemDirectoryHandle> {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(name, { create });
}

const api = {
  /** Generates `megabytes` of random chunks (untimed). */
  generate(megabytes: number): { bytes: number; chunks: number } {
    const total = megabytes * 1024 * 1024;
    chunks = [];
    for (let at = 0; at < total; at += CHUNK) chunks.push(randomChunk(Math.min(CHUNK, total - at)));
    whole = undefined;
    return { bytes: total, chunks: chunks.length };
  },

  /** Streams every chunk through one SHA-256 (or hashes each chunk, or the whole at once). */
  async hash(kind: HashKind): Promise<{ ms: number; hex: string }> {
    if (kind === 'subtle-whole' && !whole) {
      whole = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        whole.set(c, at);
        at += c.length;
      }
    }
    const t0 = performance.now();
    let hex = '';
    if (kind === 'noble') {
      const h = sha256.create();
      for (const c of chunks) h.update(c);
      hex = Array.from(h.digest(), (b) => b.toString(16).padStart(2, '0')).join('');
    } else if (kind === 'hash-wasm') {
      const h = await createSHA256();
      h.init();
      for (const c of chunks) h.update(c);
      hex = h.digest('hex');
    } else if (kind === 'subtle-per-chunk') {
      for (const c of chunks) await crypto.subtle.digest('SHA-256', c);
    } else {
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', whole!));
      hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
    }
    return { ms: performance.now() - t0, hex };
  },

  /** Writes every chunk under `name` (durably: each IDB transaction committed, each OPFS file flushed). */
  async write(kind: StorageKind, name: string): Promise<{ ms: number }> {
    const t0 = performance.now();
    if (kind.startsWith('idb')) {
      const db = await openDb(name);
      await inLanes(chunks.length, async (i) => {
        const tx = db.transaction('chunks', 'readwrite');
        const bytes = kind === 'idb-arraybuffer' ? chunks[i]! : new Blob([chunks[i]!]);
        tx.objectStore('chunks').put({ size: chunks[i]!.length, bytes }, i);
        await idbDone(tx);
      });
      db.close();
    } else if (kind === 'opfs-file-per-chunk') {
      const dir = await opfsDir(name);
      await inLanes(chunks.length, async (i) => {
        const file = await dir.getFileHandle(`c${i}`, { create: true });
        const handle = await file.createSyncAccessHandle();
        handle.write(chunks[i]!, { at: 0 });
        handle.flush();
        handle.close();
      });
    } else {
      const dir = await opfsDir(name);
      const handle = await (await dir.getFileHandle('file', { create: true })).createSyncAccessHandle();
      let at = 0;
      for (const c of chunks) {
        handle.write(c, { at });
        at += c.length;
      }
      handle.flush();
      handle.close();
    }
    return { ms: performance.now() - t0 };
  },

  /** Reads what `write` stored into one buffer of the file's size, in order, four reads ahead for IDB. */
  async read(kind: StorageKind, name: string): Promise<{ ms: number; ok: boolean }> {
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const t0 = performance.now();
    let out = new Uint8Array(total);
    if (kind === 'idb-blob-joined') {
      // Blob handles only (no bytes read), then one read of their concatenation into one buffer.
      const db = await openDb(name);
      const store = db.transaction('chunks').objectStore('chunks');
      const values = await Promise.all(chunks.map((_, i) => idbRequest(store.get(i))));
      out = new Uint8Array(await new Blob(values.map((v) => v.bytes as Blob)).arrayBuffer());
      db.close();
    } else if (kind === 'idb-arraybuffer' || kind === 'idb-blob') {
      const db = await openDb(name);
      const get = async (i: number) => {
        const value = await idbRequest(db.transaction('chunks').objectStore('chunks').get(i));
        const bytes = value.bytes as Uint8Array | Blob;
        return bytes instanceof Blob ? new Uint8Array(await bytes.arrayBuffer()) : bytes;
      };
      const ahead: Array<Promise<Uint8Array>> = [];
      for (let i = 0; i < Math.min(4, chunks.length); i++) ahead.push(get(i));
      for (let i = 0; i < chunks.length; i++) {
        const bytes = await ahead.shift()!;
        if (i + 4 < chunks.length) ahead.push(get(i + 4));
        out.set(bytes, i * CHUNK);
      }
      db.close();
    } else if (kind === 'opfs-file-per-chunk') {
      const dir = await opfsDir(name, false);
      for (let i = 0; i < chunks.length; i++) {
        const handle = await (await dir.getFileHandle(`c${i}`)).createSyncAccessHandle();
        handle.read(out.subarray(i * CHUNK, i * CHUNK + chunks[i]!.length), { at: 0 });
        handle.close();
      }
    } else {
      const dir = await opfsDir(name, false);
      const handle = await (await dir.getFileHandle('file')).createSyncAccessHandle();
      handle.read(out, { at: 0 });
      handle.close();
    }
    const ms = performance.now() - t0;
    // Spot check, untimed: the last chunk came back as written.
    const last = chunks.length - 1;
    const tail = out.subarray(last * CHUNK);
    const ok = tail.length === chunks[last]!.length && tail.every((b, i) => b === chunks[last]![i]);
    return { ms, ok };
  },

  async remove(kind: StorageKind, name: string): Promise<void> {
    if (kind.startsWith('idb')) await deleteDb(name);
    else await (await navigator.storage.getDirectory()).removeEntry(name, { recursive: true });
  },
};

export type StorageWorkerApi = typeof api;
expose(api);
