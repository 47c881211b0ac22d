/// <reference lib="webworker" />
// downloadRelease where the runtime runs it: in a dedicated worker, so the store writes OPFS packs
// as the runtime's does (on the page it would fall back to IndexedDB values).

import type { SignedRelease } from '@edgeship/protocol';
import { expose } from 'comlink';
import { downloadRelease } from '../../runtime/src/download/fetcher.ts';
import { ModelStore } from '../../runtime/src/store/model-store.ts';
import { PACK_WRITER_NAME } from '../../runtime/src/store/pack-writer.ts';
import { servePackWriter } from '../../runtime/src/store/pack-writer-serve.ts';

const api = {
  /** Downloads into a fresh store `dbName`, timed from the first request to complete; then closes it. */
  async download(signed: SignedRelease, server: string, dbName: string) {
    // As the runtime's worker opens its store: packs, written by a nested copy of this script.
    const store = await ModelStore.open(dbName, { packs: true, packWriterUrl: self.location.href });
    const t0 = performance.now();
    const result = await downloadRelease(store, signed, { server });
    const ms = performance.now() - t0;
    const packs = store.packs?.writable ?? false;
    store.close();
    return { ms, bytesFetched: result.bytesFetched, chunksReadBack: result.chunksReadBack, packs };
  },
};

export type DownloadWorkerApi = typeof api;
declare const self: DedicatedWorkerGlobalScope;
if (self.name === PACK_WRITER_NAME) servePackWriter(self);
else expose(api);
