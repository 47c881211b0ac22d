import { QuotaError, type Release } from '@edgeship/protocol';
import type { ModelStore } from '../store/model-store.ts';

/** What StorageManager.estimate() answers (both fields are optional in the spec). */
export type StorageEstimator = () => Promise<{ usage?: number; quota?: number }>;

/** navigator.storage.estimate, looked up lazily: absent in Node and in some embedded browsers. */
export function browserEstimator(): StorageEstimator | null {
  const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
  return typeof storage?.estimate === 'function' ? () => storage.estimate() : null;
}

const mib = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MiB`;

/**
 * Makes sure `bytesNeeded` more bytes fit in the origin's quota before a download writes
 * anything: a release that cannot fit would only fill the disk and fail halfway. When short, it
 * collects releases no pointer needs, but only if that makes room; otherwise it throws E_QUOTA
 * naming the space needed and leaves the store as it was. An estimate the browser does not give
 * skips the check (IndexedDB's own quota error still maps to E_QUOTA on write).
 */
export async function ensureRoom(
  store: ModelStore,
  id: string,
  release: Pick<Release, 'files'>,
  bytesNeeded: number,
  estimate: StorageEstimator | null = browserEstimator(),
): Promise<void> {
  if (bytesNeeded === 0 || !estimate) return;
  const { usage = 0, quota } = await estimate();
  if (quota === undefined) return;
  const free = Math.max(0, quota - usage);
  if (bytesNeeded <= free) return;
  // Chunks the new release shares with a spare release are kept: they need no download.
  const gc = { perModel: 0, alsoChunksOf: release };
  const reclaimable = (await store.collectGarbage({ ...gc, dryRun: true })).bytesFreed;
  if (bytesNeeded > free + reclaimable) {
    throw new QuotaError(
      `${id} needs ${bytesNeeded} bytes (${mib(bytesNeeded)}) of storage; ${free} bytes (${mib(free)}) are free ` +
        `and removing unused releases would free ${reclaimable} more. Nothing was downloaded.`,
      { cause: { bytesNeeded, free, reclaimable } },
    );
  }
  await store.collectGarbage(gc);
}
