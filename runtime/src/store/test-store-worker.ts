// A ModelStore inside a dedicated worker, where OPFS sync access handles exist and chunk bytes go
// to packs (store-in-worker.browser.test.ts drives it). Chunks come from an in-worker chunk
// server over a Map, so the test counts exactly what each download fetched.
import { seededBytes } from '@edgeship/protocol';
import { expose } from 'comlink';
import { downloadRelease } from '../download/fetcher.ts';
import { ModelStore } from './model-store.ts';
import { PACK_WRITER_NAME } from './pack-writer.ts';
import { servePackWriter } from './pack-writer-serve.ts';
import { Packs } from './packs.ts';
import { chunkBytes, makeRelease, rotStoredChunk } from './test-releases.ts';

async function release(version: string, bytes: Uint8Array, model = 'm') {
  const files = { 'model.onnx': bytes };
  const signed = await makeRelease(model, version, files);
  return { signed, chunks: chunkBytes(signed, files), id: `${model}@${version}`, bytes };
}

function chunkServer(chunks: Map<string, Uint8Array>) {
  const requests: string[] = [];
  const fetch = (async (input: RequestInfo | URL) => {
    const sha = String(input).split('/').pop()!;
    requests.push(sha);
    const bytes = chunks.get(sha);
    return bytes ? new Response(bytes.slice()) : new Response('not found', { status: 404 });
  }) as typeof globalThis.fetch;
  return { fetch, requests };
}

async function packNames(name: string): Promise<string[]> {
  const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle(name);
  const names: string[] = [];
  for await (const key of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(key);
  return names.sort();
}

/**
 * Where pack writes are made: on this worker's thread, in a nested copy of this script (as the
 * runtime's worker does), or through a writer script that fails to start (falls back to here).
 */
export type WriterPlace = 'this thread' | 'nested worker' | 'broken writer script';

function openWithPacks(name: string, writer: WriterPlace) {
  const packWriterUrl =
    writer === 'nested worker'
      ? self.location.href
      : writer === 'broken writer script'
        ? URL.createObjectURL(
            new Blob(['throw new Error("no pack writer here")'], { type: 'text/javascript' }),
          )
        : undefined;
  return ModelStore.open(name, { packs: true, packWriterUrl });
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

const api = {
  /** v1, then v2 sharing v1's leading chunks; then v1 collected. */
  async shareAndCollect(name: string, writer: WriterPlace) {
    const store = await openWithPacks(name, writer);
    try {
      const base = seededBytes(1_500_000, 7);
      const changed = base.slice();
      changed.fill(9, changed.length - 1000);
      const v1 = await release('1.0.0', base);
      const v2 = await release('2.0.0', changed);
      const first = await downloadRelease(store, v1.signed, {
        server: 'http://x',
        fetch: chunkServer(v1.chunks).fetch,
      });
      await store.activate('m', v1.id);
      const server = chunkServer(v2.chunks);
      const second = await downloadRelease(store, v2.signed, { server: 'http://x', fetch: server.fetch });
      const readV1 = same(await store.readFile(v1.id, 'model.onnx'), base);
      const readV2 = same(await store.readFile(v2.id, 'model.onnx'), changed);
      const packsBefore = await packNames(name);
      const usageBefore = await store.usage();
      await store.activate('m', v2.id);
      await store.removeRelease(v1.id);
      const freed = await store.collectGarbage();
      return {
        writable: store.packs?.writable ?? false,
        writesInWorker: (await store.packs?.writesInWorker()) ?? false,
        v1Chunks: v1.chunks.size,
        v2Chunks: v2.chunks.size,
        shared: [...v2.chunks.keys()].filter((sha) => v1.chunks.has(sha)).length,
        first: { fetched: first.chunksFetched, reused: first.chunksReused },
        second: { fetched: second.chunksFetched, reused: second.chunksReused },
        fetchedSharedAgain: server.requests.filter((sha) => v1.chunks.has(sha)).length,
        readV1,
        readV2,
        packsBefore,
        packsAfter: await packNames(name),
        files: { v1: v1.signed.signed.files[0]!.sha256, v2: v2.signed.signed.files[0]!.sha256 },
        usageBefore,
        usageAfter: await store.usage(),
        freed,
        readV2AfterGc: same(await store.readFile(v2.id, 'model.onnx'), changed),
      };
    } finally {
      store.close();
    }
  },

  /** One byte of a stored chunk rots in its pack: refused, dropped, fetched again alone. */
  async rotInPack(name: string, writer: WriterPlace) {
    const store = await openWithPacks(name, writer);
    try {
      const v1 = await release('1.0.0', seededBytes(900_000, 5));
      await downloadRelease(store, v1.signed, { server: 'http://x', fetch: chunkServer(v1.chunks).fetch });
      const victim = v1.signed.signed.files[0]!.chunks[1]!.sha256;
      await rotStoredChunk(name, victim, 10);
      const refused = await store.readFile(v1.id, 'model.onnx').then(
        () => null,
        (e: { code?: string }) => e.code ?? 'no code',
      );
      const dropped = await store.dropCorruptChunks(v1.id);
      const missing = (await store.missingChunks(v1.signed.signed)).map((c) => c.sha256);
      const complete = (await store.getRelease(v1.id))?.complete;
      const server = chunkServer(v1.chunks);
      await downloadRelease(store, v1.signed, { server: 'http://x', fetch: server.fetch });
      return {
        refused,
        dropped,
        missingIsVictim: missing.length === 1 && missing[0] === victim,
        completeAfterDrop: complete,
        refetched: server.requests.length,
        refetchedVictim: server.requests[0] === victim,
        readsAgain: same(await store.readFile(v1.id, 'model.onnx'), v1.bytes),
      };
    } finally {
      store.close();
    }
  },

  /**
   * A store written by an older runtime (chunks as IndexedDB values) opened with packs: its
   * release still reads, and a release sharing its chunks copies them into its pack.
   */
  async valuesThenPacks(name: string, writer: WriterPlace) {
    const base = seededBytes(1_200_000, 11);
    const changed = base.slice();
    changed.fill(3, changed.length - 800);
    const v1 = await release('1.0.0', base);
    const v2 = await release('2.0.0', changed);
    const old = await ModelStore.open(name);
    await downloadRelease(old, v1.signed, { server: 'http://x', fetch: chunkServer(v1.chunks).fetch });
    const oldUsage = await old.usage();
    old.close();
    const store = await openWithPacks(name, writer);
    try {
      const readV1 = same(await store.readFile(v1.id, 'model.onnx'), base);
      const server = chunkServer(v2.chunks);
      const second = await downloadRelease(store, v2.signed, { server: 'http://x', fetch: server.fetch });
      const readV2 = same(await store.readFile(v2.id, 'model.onnx'), changed);
      const packs = await packNames(name);
      await store.activate('m', v2.id);
      await store.removeRelease(v1.id);
      const freed = await store.collectGarbage();
      return {
        oldUsage,
        readV1,
        second: { fetched: second.chunksFetched, reused: second.chunksReused },
        fetchedSharedAgain: server.requests.filter((sha) => v1.chunks.has(sha)).length,
        readV2,
        packs,
        v2File: v2.signed.signed.files[0]!.sha256,
        v1Chunks: v1.chunks.size,
        v2Chunks: v2.chunks.size,
        freed,
        usageAfter: await store.usage(),
        readV2AfterGc: same(await store.readFile(v2.id, 'model.onnx'), changed),
      };
    } finally {
      store.close();
    }
  },

  /**
   * createSyncAccessHandle never settling (as Chromium 156 sometimes did): a read falls back to a
   * File snapshot after Packs.handleWaitMs; a download's writer fails with E_TIMEOUT, and once
   * handles come again the next download completes.
   */
  async handlesThatHang(name: string, writer: WriterPlace) {
    const proto = FileSystemFileHandle.prototype as unknown as {
      createSyncAccessHandle(o?: { mode?: string }): Promise<FileSystemSyncAccessHandle>;
    };
    const real = proto.createSyncAccessHandle;
    const hang = (mode: 'read-only' | 'readwrite') => {
      proto.createSyncAccessHandle = function (this: FileSystemFileHandle, o?: { mode?: string }) {
        if ((o?.mode ?? 'readwrite') === mode) return new Promise(() => {});
        return real.call(this, o);
      };
    };
    const wait = Packs.handleWaitMs;
    Packs.handleWaitMs = 300;
    const store = await openWithPacks(name, writer);
    try {
      const v1 = await release('1.0.0', seededBytes(700_000, 13));
      await downloadRelease(store, v1.signed, { server: 'http://x', fetch: chunkServer(v1.chunks).fetch });
      hang('read-only');
      const t0 = performance.now();
      const readWhileHung = same(await store.readFile(v1.id, 'model.onnx'), v1.bytes);
      const readMs = performance.now() - t0;
      proto.createSyncAccessHandle = real;
      const v2 = await release('2.0.0', seededBytes(600_000, 17));
      // Only this worker's handles hang: a nested writer's realm is left alone.
      hang('readwrite');
      const refused = await downloadRelease(store, v2.signed, {
        server: 'http://x',
        fetch: chunkServer(v2.chunks).fetch,
      }).then(
        () => null,
        (e: { code?: string }) => e.code ?? 'no code',
      );
      proto.createSyncAccessHandle = real;
      const again = await downloadRelease(store, v2.signed, {
        server: 'http://x',
        fetch: chunkServer(v2.chunks).fetch,
      });
      return {
        readWhileHung,
        readMs,
        refused,
        completedAfter: (await store.getRelease(v2.id))?.complete ?? false,
        fetchedAfter: again.chunksFetched,
        readsV2: same(await store.readFile(v2.id, 'model.onnx'), v2.bytes),
      };
    } finally {
      proto.createSyncAccessHandle = real;
      Packs.handleWaitMs = wait;
      store.close();
    }
  },
};

export type TestStoreWorker = typeof api;
declare const self: DedicatedWorkerGlobalScope;
if (self.name === PACK_WRITER_NAME) servePackWriter(self);
else expose(api);
