// Page side of the real-sized model benchmark (bench/src/real-sized.ts): the runtime's first
// load, cold start and download of a generated model, and the raw ORT baselines beside them.
import type { SignedRelease, TrustedRoot } from '@edgeship/protocol';
import { wrap } from 'comlink';
import type { BigRawFile, BigRawReply, BigRawRequest } from './big-raw-worker.ts';
import type { DownloadWorkerApi } from './download-worker.ts';
import { timedRuntimeStart } from './runtime-start.ts';

export interface BigSetup {
  server: string;
  trustedRoot: TrustedRoot;
  model: string;
  width: number;
}

const wasmPaths = () => new URL('/ort/', location.href).href;

/** bigModelInput(width) (test/support/big-model-input.ts), rebuilt here to stay browser-only. */
function input(width: number): Float32Array {
  const out = new Float32Array(width);
  let state = 7;
  for (let i = 0; i < width; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state / 0x1_0000_0000) * 2 - 1;
  }
  return out;
}

function runtimeOptions(setup: BigSetup, storagePrefix: string) {
  return {
    server: setup.server,
    app: 'demo-app',
    channel: 'stable',
    trustedRoot: setup.trustedRoot,
    wasmPaths: wasmPaths(),
    backend: 'wasm' as const,
    telemetry: false,
    checkOnLoad: false,
    models: [setup.model],
    storagePrefix,
  };
}

function rawWorker(request: BigRawRequest, transfer: Transferable[]) {
  return new Promise<Extract<BigRawReply, { type: 'done' }>>((resolve, reject) => {
    const worker = new Worker(new URL('./big-raw-worker.ts', import.meta.url), { type: 'module' });
    worker.onmessage = (event: MessageEvent<BigRawReply>) => {
      worker.terminate();
      if (event.data.type === 'error') reject(new Error(event.data.message));
      else resolve(event.data);
    };
    worker.postMessage(request, transfer);
  });
}

/** Bytes the runtime's store holds (chunks, each once), read from another connection. */
async function storedBytes(dbName: string): Promise<number> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const request = indexedDB.open(dbName);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  try {
    let total = 0;
    if (db.objectStoreNames.contains('places')) {
      // Chunks in OPFS packs: the places recorded for them, without reading any bytes.
      const places = await idbRequest(db.transaction('places').objectStore('places').getAll());
      total += (places as Array<{ size: number }>).reduce((n, p) => n + p.size, 0);
    }
    if (!db.objectStoreNames.contains('chunks')) return total;
    const index = db.transaction('chunks').objectStore('chunks').index('bySize');
    // A key cursor on the size index: sizes without reading any chunk's bytes.
    return await new Promise<number>((resolve, reject) => {
      const request = index.openKeyCursor();
      request.onsuccess = () => {
        const cursor = request.result;
        if (!cursor) return resolve(total);
        total += cursor.key as number;
        cursor.continue();
      };
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

function idbRequest<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Deletes the IndexedDB databases and OPFS pack directories whose names start with `prefix`. */
export async function dropStores(prefix: string): Promise<void> {
  for (const db of await indexedDB.databases()) {
    if (!db.name?.startsWith(prefix)) continue;
    await new Promise((resolve) => {
      const request = indexedDB.deleteDatabase(db.name!);
      request.onsuccess = request.onerror = request.onblocked = resolve;
    });
  }
  const root = await navigator.storage.getDirectory();
  for await (const name of (root as unknown as { keys(): AsyncIterable<string> }).keys()) {
    if (name.startsWith(prefix)) await root.removeEntry(name, { recursive: true }).catch(() => {});
  }
}

export const bigBench = {
  /** createRuntime → load (download, verify, store, session) → first run, on an empty store. */
  async bigRuntimeLoad(setup: BigSetup, storagePrefix: string) {
    const {
      outputs,
      status: _,
      ...spans
    } = await timedRuntimeStart(runtimeOptions(setup, storagePrefix), setup.model, {
      input: { data: input(setup.width), dims: [1, setup.width] },
    });
    return { ...spans, output: (outputs.output!.data as Float32Array)[0]! };
  },

  /** Raw ORT in a new worker: the files fetched as plain chunk requests, or handed over from memory. */
  async bigRaw(setup: BigSetup, signed: SignedRelease, chunkBase: string, source: 'fetch' | 'memory') {
    const files: BigRawFile[] = signed.signed.files.map((f) => ({
      path: f.path,
      size: f.size,
      chunks: f.chunks.map((c) => ({ url: `${chunkBase}/v1/chunks/${c.sha256}`, size: c.size })),
    }));
    if (source === 'memory') {
      // Untimed: the bytes are in memory before the clock starts (the floor).
      const fetched = await rawWorkerFetch(files);
      for (const [i, f] of files.entries()) {
        f.bytes = fetched[i]!;
        delete f.chunks;
      }
    }
    const transfer = files.flatMap((f) => (f.bytes ? [f.bytes.buffer] : []));
    const t0 = performance.now();
    const reply = await rawWorker(
      { wasmPaths: wasmPaths(), files, input: input(setup.width), width: setup.width },
      transfer,
    );
    return { totalMs: performance.now() - t0, ...reply };
  },

  /**
   * downloadRelease (fetch, chunk and file hashes, storage) into a fresh store, in a dedicated
   * worker as the runtime runs it (OPFS packs); the store is deleted after.
   */
  async bigDownload(signed: SignedRelease, server: string, dbName: string) {
    const worker = new Worker(new URL('./download-worker.ts', import.meta.url), { type: 'module' });
    try {
      return await wrap<DownloadWorkerApi>(worker).download(signed, server, dbName);
    } finally {
      worker.terminate();
      await dropStores(dbName);
    }
  },

  /** Starts a runtime load and does not wait for it: the page may be reloaded under it. */
  bigStartLoad(setup: BigSetup, storagePrefix: string) {
    const state = globalThis as unknown as { bigLoad?: Promise<unknown>; bigLoadError?: string };
    state.bigLoad = bigBench.bigRuntimeLoad(setup, storagePrefix).catch((error: Error) => {
      state.bigLoadError = error.message;
    });
    return true;
  },

  bigStoredBytes: (storagePrefix: string) => storedBytes(`${storagePrefix}-models`),
  bigDropStores: dropStores,
};

/** The plain fetch of each file, untimed, for the from-memory floor. */
async function rawWorkerFetch(files: BigRawFile[]): Promise<Uint8Array[]> {
  return Promise.all(
    files.map(async (f) => {
      const out = new Uint8Array(f.size);
      let at = 0;
      for (const c of f.chunks ?? []) {
        out.set(new Uint8Array(await (await fetch(c.url, { cache: 'no-store' })).arrayBuffer()), at);
        at += c.size;
      }
      return out;
    }),
  );
}
