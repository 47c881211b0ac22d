// The model store and the chunk fetcher on Chromium's real IndexedDB. Chunks come from an
// in-page chunk server (a fetch function over a Map), so each failure mode can be staged exactly;
// runtime.browser.test.ts covers the same path over real HTTP.
import { seededBytes } from '@edgeship/protocol';
import { openDB } from 'idb';
import { afterEach, describe, expect, it } from 'vitest';
import { downloadRelease } from '../download/fetcher.ts';
import { ModelStore } from './model-store.ts';
import { chunkBytes, makeRelease } from './test-releases.ts';

const stores: ModelStore[] = [];
let serial = 0;

async function openStore() {
  const name = `store-test-${Date.now()}-${serial++}`;
  const store = await ModelStore.open(name);
  stores.push(store);
  return { store, name };
}

afterEach(() => {
  for (const store of stores.splice(0)) store.close();
});

type ChunkServer = typeof fetch & { requests: string[] };

/** Serves chunks by hash from memory; `misbehave` can replace any response. */
function chunkServer(
  chunks: Map<string, Uint8Array>,
  misbehave?: (sha: string) => Response | null,
): ChunkServer {
  const requests: string[] = [];
  const serve = (async (input: RequestInfo | URL) => {
    const sha = String(input).split('/').pop()!;
    requests.push(sha);
    const custom = misbehave?.(sha);
    if (custom) return custom;
    const bytes = chunks.get(sha);
    return bytes ? new Response(bytes.slice()) : new Response('not found', { status: 404 });
  }) as ChunkServer;
  serve.requests = requests;
  return serve;
}

async function release(version: string, bytes: Uint8Array) {
  const files = { 'model.onnx': bytes };
  const signed = await makeRelease('m', version, files);
  return { signed, chunks: chunkBytes(signed, files), id: `m@${version}` };
}

describe('ModelStore in Chromium', () => {
  it('installs, activates and collects garbage, sharing chunks between releases', async () => {
    const { store } = await openStore();
    const base = seededBytes(1_500_000, 7);
    const v1 = await release('1.0.0', base);
    // Same bytes with a different tail: content-defined chunking keeps the leading chunks.
    const changed = base.slice();
    changed.fill(9, changed.length - 1000);
    const v2 = await release('2.0.0', changed);

    const first = await downloadRelease(store, v1.signed, {
      server: 'http://x',
      fetch: chunkServer(v1.chunks),
    });
    expect(first).toMatchObject({
      chunksFetched: v1.chunks.size,
      chunksReused: 0,
      bytesFetched: base.length,
    });
    await store.activate('m', v1.id);
    await store.markGood('m', v1.id);
    expect(await store.readFile(v1.id, 'model.onnx')).toEqual(base);

    const server = chunkServer(v2.chunks);
    const second = await downloadRelease(store, v2.signed, { server: 'http://x', fetch: server });
    const shared = [...v2.chunks.keys()].filter((sha) => v1.chunks.has(sha));
    expect(shared.length).toBeGreaterThan(0);
    expect(second.chunksReused).toBe(shared.length);
    expect(server.requests.filter((sha) => v1.chunks.has(sha))).toEqual([]);
    // Writing v2 never touched the active pointer.
    expect(await store.pointers('m')).toMatchObject({ active: v1.id, lastKnownGood: v1.id });

    await store.activate('m', v2.id);
    await store.markGood('m', v2.id);
    await store.removeRelease(v1.id);
    const before = await store.usage();
    const freed = await store.collectGarbage();
    const onlyV1 = [...v1.chunks.keys()].filter((sha) => !v2.chunks.has(sha));
    expect(freed.chunksDeleted).toBe(onlyV1.length);
    expect((await store.usage()).chunks).toBe(before.chunks - onlyV1.length);
    expect(await store.readFile(v2.id, 'model.onnx')).toEqual(changed);
  });

  it('refuses a chunk whose bytes do not hash to its name, and stores nothing of it', async () => {
    const { store } = await openStore();
    const v1 = await release('1.0.0', seededBytes(200_000, 3));
    const [sha, bytes] = [...v1.chunks][0]!;
    const wrong = bytes.slice();
    wrong[0]! ^= 1;
    await expect(store.putChunk(sha, wrong)).rejects.toMatchObject({ code: 'E_HASH' });
    expect(await store.hasChunk(sha)).toBe(false);
  });

  it('detects bytes corrupted in storage after they were verified', async () => {
    const { store, name } = await openStore();
    const v1 = await release('1.0.0', seededBytes(300_000, 5));
    await downloadRelease(store, v1.signed, { server: 'http://x', fetch: chunkServer(v1.chunks) });
    const [sha, bytes] = [...v1.chunks][0]!;
    const db = await openDB(name);
    const rotten = bytes.slice();
    rotten[10]! ^= 0xff;
    await db.put('chunks', { size: rotten.length, bytes: rotten }, sha);
    db.close();
    await expect(store.readFile(v1.id, 'model.onnx')).rejects.toMatchObject({ code: 'E_HASH' });
  });

  it('reads several files back to back into one buffer, checking every chunk (TF.js shards)', async () => {
    const { store, name } = await openStore();
    const files = {
      'model.json': new TextEncoder().encode('{"format":"graph-model"}'),
      'group1-shard1of2.bin': seededBytes(700_000, 21),
      'group1-shard2of2.bin': seededBytes(500_000, 22),
    };
    const signed = await makeRelease('t', '1.0.0', files);
    const chunks = chunkBytes(signed, files);
    await downloadRelease(store, signed, { server: 'http://x', fetch: chunkServer(chunks) });
    const shards = ['group1-shard1of2.bin', 'group1-shard2of2.bin'] as const;
    const out = new Uint8Array(1_200_000);
    await store.readFilesInto('t@1.0.0', shards, out);
    expect(out.subarray(0, 700_000)).toEqual(files[shards[0]]);
    expect(out.subarray(700_000)).toEqual(files[shards[1]]);
    await expect(store.readFilesInto('t@1.0.0', shards, new Uint8Array(1_000_000))).rejects.toMatchObject({
      code: 'E_LENGTH',
    });

    // One byte rotted in the second shard's last chunk: the read fails, naming that chunk.
    const last = signed.signed.files[2]!.chunks.at(-1)!.sha256;
    const db = await openDB(name);
    const rotten = chunks.get(last)!.slice();
    rotten[0]! ^= 0xff;
    await db.put('chunks', { size: rotten.length, bytes: rotten }, last);
    db.close();
    const failure = await store.readFilesInto('t@1.0.0', shards, out).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: 'E_HASH', message: expect.stringContaining(last) });
    // verifyFile, the download-time whole-file check, catches it too, from the stored chunks.
    await expect(store.verifyFile('t@1.0.0', shards[1])).rejects.toMatchObject({ code: 'E_HASH' });
    expect(await store.verifyFile('t@1.0.0', shards[0])).toMatchObject({ peakBytesHeld: expect.any(Number) });
  });

  it('fails with E_QUOTA when storage runs out, keeps the active release, and resumes later', async () => {
    const { store } = await openStore();
    const v1 = await release('1.0.0', seededBytes(300_000, 11));
    await downloadRelease(store, v1.signed, { server: 'http://x', fetch: chunkServer(v1.chunks) });
    await store.activate('m', v1.id);
    const v2 = await release('2.0.0', seededBytes(900_000, 12));

    // Fault injection: the disk is full from the third chunk on, as Chromium reports it (the
    // downloader writes chunks in groups, and alone again when a group fails).
    const put = IDBObjectStore.prototype.put;
    const fits = new Set<unknown>();
    IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<typeof put>) {
      if (this.name === 'chunks' && !fits.has(args[1])) {
        if (fits.size >= 2) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
        fits.add(args[1]);
      }
      return put.apply(this, args);
    };
    try {
      await expect(
        downloadRelease(store, v2.signed, {
          server: 'http://x',
          fetch: chunkServer(v2.chunks),
          concurrency: 1,
        }),
      ).rejects.toMatchObject({ code: 'E_QUOTA' });
    } finally {
      IDBObjectStore.prototype.put = put;
    }
    expect(await store.pointers('m')).toMatchObject({ active: v1.id, pending: null });
    expect((await store.getRelease(v2.id))?.complete).toBe(false);
    expect(await store.readFile(v1.id, 'model.onnx')).toHaveLength(300_000);

    const server = chunkServer(v2.chunks);
    const resumed = await downloadRelease(store, v2.signed, { server: 'http://x', fetch: server });
    expect(resumed.chunksReused).toBe(2);
    expect(server.requests).toHaveLength(v2.chunks.size - 2);
    expect((await store.getRelease(v2.id))?.complete).toBe(true);
  });
});

describe('chunk fetcher in Chromium', () => {
  it('refuses a chunk longer than signed (E_LENGTH) without reading it all', async () => {
    const { store } = await openStore();
    const v1 = await release('1.0.0', seededBytes(100_000, 21));
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const server = chunkServer(v1.chunks, () => new Response(endless));
    await expect(
      downloadRelease(store, v1.signed, { server: 'http://x', fetch: server, attempts: 1 }),
    ).rejects.toMatchObject({ code: 'E_LENGTH' });
  });

  it('gives up on a chunk that stalls (E_STALLED) and retries transient failures', async () => {
    const { store } = await openStore();
    const v1 = await release('1.0.0', seededBytes(100_000, 22));
    const stalled = () => new Response(new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}) }));
    await expect(
      downloadRelease(store, v1.signed, {
        server: 'http://x',
        fetch: chunkServer(v1.chunks, stalled),
        stallMs: 200,
        attempts: 2,
      }),
    ).rejects.toMatchObject({ code: 'E_STALLED' });

    // A 503 then success: the retry completes the download.
    let failures = 0;
    const flaky = chunkServer(v1.chunks, () =>
      failures++ < 1 ? new Response('busy', { status: 503 }) : null,
    );
    const result = await downloadRelease(store, v1.signed, { server: 'http://x', fetch: flaky });
    expect(result.chunksFetched).toBe(v1.chunks.size);
    expect(flaky.requests.length).toBe(v1.chunks.size + 1);
  });
});
