// The model store where the runtime runs it: in a dedicated worker, on Chromium's real OPFS and
// IndexedDB, chunk bytes in packs (model-store.browser.test.ts covers the page, IndexedDB values).
import { type Remote, wrap } from 'comlink';
import { afterAll, describe, expect, it } from 'vitest';
import type { TestStoreWorker, WriterPlace } from './test-store-worker.ts';

const worker = new Worker(new URL('./test-store-worker.ts', import.meta.url), { type: 'module' });
const store: Remote<TestStoreWorker> = wrap(worker);
let serial = 0;
const unique = (label: string) => `packs-${label}-${Date.now()}-${serial++}`;

afterAll(() => worker.terminate());

const places: WriterPlace[] = ['nested worker', 'this thread', 'broken writer script'];

describe.each(places)('ModelStore in a dedicated worker (OPFS packs, written on %s)', (writer) => {
  it('stores chunks in one pack per file, shares chunks between releases, and collects packs', async () => {
    const r = await store.shareAndCollect(unique('share'), writer);
    expect(r.writable).toBe(true);
    // A writer script that does not start leaves the writes on the store's own thread.
    expect(r.writesInWorker).toBe(writer === 'nested worker');
    expect(r.first).toEqual({ fetched: r.v1Chunks, reused: 0 });
    expect(r.shared).toBeGreaterThan(0);
    // Shared chunks are never fetched again: copied out of v1's pack into v2's.
    expect(r.second).toEqual({ fetched: r.v2Chunks - r.shared, reused: r.shared });
    expect(r.fetchedSharedAgain).toBe(0);
    expect(r.readV1).toBe(true);
    expect(r.readV2).toBe(true);
    expect(r.packsBefore).toEqual([r.files.v1, r.files.v2].sort());
    expect(r.usageBefore.chunks).toBe(r.v1Chunks + r.v2Chunks);
    // v1's pack goes with v1: every place of it, and the file.
    expect(r.freed.chunksDeleted).toBe(r.v1Chunks);
    expect(r.packsAfter).toEqual([r.files.v2]);
    expect(r.usageAfter).toMatchObject({ releases: 1, chunks: r.v2Chunks });
    expect(r.usageAfter.bytes).toBe(1_500_000);
    expect(r.readV2AfterGc).toBe(true);
  });

  it('refuses a chunk rotted in its pack with E_HASH, then fetches exactly that chunk again', async () => {
    const r = await store.rotInPack(unique('rot'), writer);
    expect(r).toEqual({
      refused: 'E_HASH',
      dropped: 1,
      missingIsVictim: true,
      completeAfterDrop: false,
      refetched: 1,
      refetchedVictim: true,
      readsAgain: true,
    });
  });

  it('reads through a File snapshot when no sync access handle comes, and fails a download whose writer gets none with E_TIMEOUT', async () => {
    const r = await store.handlesThatHang(unique('hang'), writer);
    expect(r.readWhileHung).toBe(true);
    // Bounded by the 300 ms wait set for the test, not by the page's engine-start bound.
    expect(r.readMs).toBeLessThan(5_000);
    // The nested writer's handles do not hang (another realm): its download completes.
    expect(r.refused).toBe(writer === 'nested worker' ? null : 'E_TIMEOUT');
    expect(r.completedAfter).toBe(true);
    expect(r.readsV2).toBe(true);
  });

  it('reads releases an older runtime stored as IndexedDB values and copies their shared chunks into packs', async () => {
    const r = await store.valuesThenPacks(unique('upgrade'), writer);
    expect(r.oldUsage.chunks).toBe(r.v1Chunks);
    expect(r.readV1).toBe(true);
    expect(r.second.fetched).toBe(r.v2Chunks - r.second.reused);
    expect(r.second.reused).toBeGreaterThan(0);
    expect(r.fetchedSharedAgain).toBe(0);
    expect(r.readV2).toBe(true);
    expect(r.packs).toEqual([r.v2File]);
    // v1's values go with v1; v2 lives whole in its pack.
    expect(r.freed.chunksDeleted).toBe(r.v1Chunks);
    expect(r.usageAfter).toMatchObject({ releases: 1, chunks: r.v2Chunks, bytes: 1_200_000 });
    expect(r.readV2AfterGc).toBe(true);
  });
});
