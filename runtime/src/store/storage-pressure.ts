import { QuotaError } from '@edgeship/protocol/errors';

// Storage pressure: what a full disk looks like to IndexedDB, and the one lever against eviction.

/**
 * True for a storage-quota failure. Browsers report it as a DOMException named
 * QuotaExceededError, either on the request or (Chromium, at commit) as the transaction's error;
 * legacy engines only set the numeric code 22.
 */
export function isQuotaError(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const { name, code } = error as { name?: unknown; code?: unknown };
  return name === 'QuotaExceededError' || code === 22;
}

/** Maps a failed write to E_QUOTA when storage ran out; any other error is returned as it is. */
export function storageError(error: unknown, transactionError?: unknown): unknown {
  const quota = isQuotaError(error) ? error : isQuotaError(transactionError) ? transactionError : null;
  if (quota === null) return error;
  return new QuotaError('storage quota exceeded; nothing of this write was stored', {
    cause: quota,
  });
}

/**
 * Asks the browser not to evict this origin's storage under pressure. Resolves true or false as
 * the browser decides, or null where the API does not exist: StorageManager.persist() is
 * exposed to windows only (and not at all in Node), so a worker should ask its page to call it.
 */
export async function requestPersistence(): Promise<boolean | null> {
  // Looked up lazily: `navigator` is absent in Node 20 and `persist` in most workers.
  const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
  if (typeof storage?.persist !== 'function') return null;
  try {
    return await storage.persist();
  } catch {
    // Some browsers reject instead of resolving false (e.g. an opaque origin).
    return false;
  }
}
