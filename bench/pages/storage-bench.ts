// Page side of the storage and hash benchmarks: the work runs in bench/pages/storage-worker.ts.
import { type Remote, wrap } from 'comlink';
import type { HashKind, StorageKind, StorageWorkerApi } from './storage-worker.ts';

let worker: Worker | undefined;
let api: Remote<StorageWorkerApi> | undefined;

function storageWorker(): Remote<StorageWorkerApi> {
  if (!api) {
    worker = new Worker(new URL('./storage-worker.ts', import.meta.url), { type: 'module' });
    api = wrap<StorageWorkerApi>(worker);
  }
  return api;
}

export const storageBench = {
  storageGenerate: (megabytes: number) => storageWorker().generate(megabytes),
  storageHash: (kind: HashKind) => storageWorker().hash(kind),
  storageWrite: (kind: StorageKind, name: string) => storageWorker().write(kind, name),
  storageRead: (kind: StorageKind, name: string) => storageWorker().read(kind, name),
  storageRemove: (kind: StorageKind, name: string) => storageWorker().remove(kind, name),
  storageClose() {
    worker?.terminate();
    worker = undefined;
    api = undefined;
  },
};
