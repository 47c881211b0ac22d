import {
  EdgeshipError,
  type KeySet,
  type ReleaseRef,
  type SignedRelease,
  StalledDownloadError,
  verifyReleaseDocument,
} from '@edgeship/protocol';
import { readCappedBytes } from './read-capped.ts';

export interface ReleaseDocumentSource {
  server: string;
  fetch: typeof fetch;
  /** Deadline for the request, headers and body (slow retrieval). */
  timeoutMs: number;
  /** The whole check's signal: abandoning the check abandons this request. */
  signal: AbortSignal;
}

/**
 * Fetches the signed release document a verified manifest names (schema 2) and verifies it:
 * read at most the length the manifest gives (endless data), then that length, hash and publisher
 * signature (verifyReleaseDocument). The route is immutable, so the HTTP cache may answer.
 */
export async function fetchReleaseDocument(
  source: ReleaseDocumentSource,
  model: string,
  ref: ReleaseRef,
  keySet: KeySet,
): Promise<SignedRelease> {
  const url = `${source.server.replace(/\/$/, '')}/v1/releases/by-hash/${ref.sha256}`;
  const what = `the release document of ${model}@${ref.version}`;
  const tooSlow = new AbortController();
  const timer = setTimeout(
    () => tooSlow.abort(new StalledDownloadError(`${what} did not arrive within ${source.timeoutMs} ms`)),
    source.timeoutMs,
  );
  const signal = AbortSignal.any([source.signal, tooSlow.signal]);
  try {
    let response: Response;
    try {
      response = await source.fetch(url, { signal });
    } catch (error) {
      if (signal.aborted && signal.reason instanceof EdgeshipError) throw signal.reason;
      throw new EdgeshipError('E_NETWORK', `cannot fetch ${what}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (!response.ok) throw new EdgeshipError('E_HTTP', `${what} request answered ${response.status}`);
    const bytes = await readCappedBytes(response, ref.size, signal, what);
    return await verifyReleaseDocument(bytes, { model, ref }, keySet);
  } finally {
    clearTimeout(timer);
  }
}
