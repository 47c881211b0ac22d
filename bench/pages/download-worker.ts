// downloadRelease where the runtime runs it: in a dedicated worker, so the store writes OPFS packs
// as the runtime's does (on the page it would fall back to IndexedDB values).

import type { SignedRelease } from '@edgeship/protocol';
import { expose } from 'comlink';
import { downloadRelease } from '../../runtime/src/download/fetcher.ts';
import { ModelStore } from '../../runtime/src/store/model-store.ts';

const api = {
  /** Downloads into a fresh store `dbName`, timed from the first request to complete; then closes it. */
  async download(signed: SignedRelease, server: string, dbName: string) {
    const store = await ModelStore.open(dbName);
    const t0 = performance.now();
    const result = await downloadRelease(store, signed, { server });
    const ms = performance.now() - t0;
    const packs = store.packs?.writable ?? false;
    store.close();
    return { ms, bytesFetched: result.bytesFetched, chunksReadBack: result.chunksReadBack, packs };
  },
};

export type DownloadWorkerApi = typeof api;
expose(api);
