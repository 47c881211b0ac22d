import {
  type ChunkRef,
  EdgeshipError,
  type FileEntry,
  HttpStatusError,
  LengthMismatchError,
  NetworkError,
  type Release,
  releaseId,
  type SignedRelease,
  StalledDownloadError,
  sha256Hex,
} from '@edgeship/protocol';
import type { ModelStore } from '../store/model-store.ts';
import { ArrivalHasher } from './arrival-hasher.ts';
import { ensureRoom, type StorageEstimator } from './quota.ts';

export interface DownloadOptions {
  /** Update server origin; chunks are fetched from `${server}/v1/chunks/<sha256>`. */
  server: string;
  /** Chunk requests in flight at once. */
  concurrency?: number;
  /** A chunk that receives no byte for this long is abandoned (dead link). */
  stallMs?: number;
  /**
   * Slow retrieval: a chunk must arrive within `firstByteMs + size / minBytesPerSecond`, however
   * steadily it trickles in (a byte every 250 ms resets a stall timer forever, not this deadline).
   */
  minBytesPerSecond?: number;
  /** Allowance for connecting and the first byte, on top of the size-based time. */
  firstByteMs?: number;
  /** Attempts per chunk for transient failures (network, stall, 5xx, 429). */
  attempts?: number;
  signal?: AbortSignal;
  fetch?: typeof fetch;
  /** Storage estimate checked before anything is written; default navigator.storage.estimate. */
  estimate?: StorageEstimator | null;
  onProgress?: (progress: DownloadProgress) => void;
  /**
   * Keep the verified files in memory for the activation that follows (ModelStore.handOver):
   * a first load, which would otherwise read every byte back out of the store it just wrote.
   */
  keepBytes?: boolean;
}

export interface DownloadProgress {
  release: string;
  chunksDone: number;
  chunksToFetch: number;
  bytesFetched: number;
  bytesToFetch: number;
}

export interface DownloadResult {
  release: string;
  chunksFetched: number;
  bytesFetched: number;
  /** Chunks already stored (from an interrupted download or a release sharing them). */
  chunksReused: number;
  /**
   * The most chunk bytes held at once while whole-file hashes were verified: bounded by a few
   * chunks whatever the file's size, since no file is assembled to be checked.
   */
  verifyPeakBytes: number;
  /**
   * Chunks read back from the store to finish whole-file hashes: 0 when every chunk arrived in
   * this download close enough to file order to be hashed on arrival.
   */
  chunksReadBack: number;
  /** The files were left in memory for the next readReleaseBytes (DownloadOptions.keepBytes). */
  handedOver: boolean;
  ms: number;
}

const DEFAULT_CONCURRENCY = 4;
const DEFAULT_STALL_MS = 15_000;
/**
 * Slow retrieval. TUF's goals listed it until 2020 ("An attacker cannot prevent clients from
 * being aware of interference with receiving updates by responding to client requests so slowly
 * that automated updates never complete"), then left it to implementations. 4 KiB/s per chunk,
 * 16 KiB/s over four lanes (a 2G link): a 1 MiB chunk, the chunker's largest, gets 15 s + 256 s,
 * an average 256 KiB chunk 15 s + 64 s.
 */
export const DEFAULT_MIN_BYTES_PER_SECOND = 4096;
export const DEFAULT_FIRST_BYTE_MS = 15_000;
const DEFAULT_ATTEMPTS = 3;
/** Chunks fetched ahead of the first one not yet stored, per lane (see downloadRelease). */
const WINDOW_PER_LANE = 4;
/** Chunks written in one IndexedDB transaction at most. */
const MAX_WRITE_GROUP = 16;

/**
 * Downloads a release into the store: only the chunks it lacks, several at a time, each checked
 * against its signed size and SHA-256 before it is stored. Verified chunks survive a dropped
 * connection or a closed tab, so the next attempt resumes where this one stopped. The release is
 * marked complete only after every whole file matches its signed hash; nothing here touches the
 * active release. Before anything is written, the bytes still needed are checked against the
 * storage quota (E_QUOTA if they cannot fit even after collecting unused releases).
 */
export async function downloadRelease(
  store: ModelStore,
  signed: SignedRelease,
  options: DownloadOptions,
): Promise<DownloadResult> {
  try {
    return await downloadAndVerify(store, signed, options);
  } finally {
    // What it wrote is recorded (or the download failed anyway), and the packs it wrote stay
    // open (and locked) only while it runs.
    await store.drainWrites().catch(() => {});
    await store.closeWriters(signed.signed);
  }
}

async function downloadAndVerify(
  store: ModelStore,
  signed: SignedRelease,
  options: DownloadOptions,
): Promise<DownloadResult> {
  const started = performance.now();
  const release = signed.signed;
  const id = releaseId(release);
  const missing = await store.missingChunks(release);
  const bytesToFetch = missing.reduce((n, c) => n + c.size, 0);
  await ensureRoom(store, id, release, await store.bytesToStore(release), options.estimate);
  await store.putRelease(signed);

  const unique = new Set(release.files.flatMap((f) => f.chunks.map((c) => c.sha256))).size;
  const progress: DownloadProgress = {
    release: id,
    chunksDone: 0,
    chunksToFetch: missing.length,
    bytesFetched: 0,
    bytesToFetch,
  };
  options.onProgress?.({ ...progress });

  // One failed chunk stops the rest: their bytes would only be fetched again on the retry.
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const lanes = Math.max(1, Math.min(options.concurrency ?? DEFAULT_CONCURRENCY, missing.length));
  // A lane fetches chunk i of `missing` only while i is within WINDOW of the first chunk not yet
  // verified and stored: the whole-file hashes then take every chunk on arrival (nothing is read
  // back from the store after an uninterrupted download), holding at most WINDOW chunks.
  const window = Math.max(lanes * WINDOW_PER_LANE, lanes + 1);
  const largest = Math.max(0, ...missing.map((c) => c.size));
  const arrival = await ArrivalHasher.create(release.files, window * largest);
  // A first load keeps the files it assembles (ModelStore.handOver): only when every chunk comes
  // from this download, so nothing has to be read back to complete them.
  const assembly = options.keepBytes && missing.length === unique ? assemble(release.files) : null;
  const writer = new ChunkWriter(store, release);
  const settled: boolean[] = [];
  let frontier = 0;
  let next = 0;
  // Lanes ahead of the window wait for the frontier to move (or for the download to stop).
  let open = () => {};
  let gate = new Promise<void>((resolve) => (open = resolve));
  const wake = () => {
    open();
    gate = new Promise<void>((resolve) => (open = resolve));
  };
  stop.signal.addEventListener('abort', wake, { once: true });
  const settle = async (index: number, ref: ChunkRef, bytes: Uint8Array) => {
    await writer.put(ref.sha256, bytes);
    // After the write: only bytes that matched their signed chunk hash go into a file's hash.
    arrival.offer(ref.sha256, bytes);
    assembly?.place(ref.sha256, bytes);
    progress.chunksDone += 1;
    progress.bytesFetched += bytes.length;
    options.onProgress?.({ ...progress });
    settled[index] = true;
    while (settled[frontier]) frontier += 1;
    wake();
  };
  const lane = async (): Promise<void> => {
    const stores: Array<Promise<void>> = [];
    try {
      while (next < missing.length) {
        if (signal.aborted) throw signal.reason;
        if (next >= frontier + window) {
          await gate;
          continue;
        }
        const index = next++;
        const ref = missing[index]!;
        const bytes = await fetchChunkWithRetries(ref, options, signal);
        // The lane fetches on while its chunk is hashed and written.
        const stored = settle(index, ref, bytes);
        stored.catch((error: unknown) => stop.abort(error));
        stores.push(stored);
      }
    } catch (error) {
      // What this lane fetched before is stored (or refused) before the download settles.
      await Promise.allSettled(stores);
      throw error;
    }
    await Promise.all(stores);
  };
  try {
    await Promise.all(
      Array.from({ length: lanes }, () =>
        lane().catch((error: unknown) => {
          stop.abort(error);
          throw error;
        }),
      ),
    );
  } catch (error) {
    throw options.signal?.aborted ? abortError(options.signal) : (stop.signal.reason ?? error);
  }

  // Every chunk matched, yet a file is only right if its chunks, in order, hash to the file's hash:
  // hashed as they arrived where file order allowed, the rest from the stored chunks one after
  // another; never from an assembled copy of the file.
  const partials = arrival.finish();
  await store.drainWrites();
  // Chunks this release shares with others were not fetched: with packs, they are copied in.
  await store.fillPlaces(release);
  let verifyPeakBytes = arrival.peakHeldBytes;
  let chunksReadBack = 0;
  for (const file of release.files) {
    const verified = await store.verifyFile(id, file.path, partials.get(file.path));
    verifyPeakBytes = Math.max(verifyPeakBytes, verified.peakBytesHeld);
    chunksReadBack += verified.chunksReadBack;
  }
  await store.markComplete(id);
  if (assembly) store.handOver(id, assembly.files);
  return {
    release: id,
    chunksFetched: missing.length,
    bytesFetched: progress.bytesFetched,
    chunksReused: unique - missing.length,
    verifyPeakBytes,
    chunksReadBack,
    handedOver: assembly !== null,
    ms: performance.now() - started,
  };
}

/**
 * Writes chunks in groups, each checked against its signed SHA-256 first (ModelStore.putChunks):
 * the chunks that arrive while one write commits go together in the next transaction. Each put
 * resolves once its chunk is committed.
 */
class ChunkWriter {
  private batch: Array<{
    sha256: string;
    bytes: Uint8Array;
    digest: Promise<string>;
    done: () => void;
    failed: (e: unknown) => void;
  }> = [];
  private writing = false;

  constructor(
    private readonly store: ModelStore,
    private readonly release: Pick<Release, 'files'>,
  ) {}

  put(sha256: string, bytes: Uint8Array): Promise<void> {
    // Hashed from arrival (crypto.subtle, off this thread) while the previous group commits.
    const digest = sha256Hex(bytes);
    digest.catch(() => {});
    return new Promise((done, failed) => {
      this.batch.push({ sha256, bytes, digest, done, failed });
      if (!this.writing) void this.flush();
    });
  }

  private async flush() {
    this.writing = true;
    while (this.batch.length > 0) {
      const group = this.batch.splice(0, MAX_WRITE_GROUP);
      try {
        await this.store.putChunks(group, this.release);
        for (const c of group) c.done();
      } catch (error) {
        // One at a time, so the chunks that can be stored are (a full disk stops at the chunk
        // that does not fit, and the next attempt resumes after the ones before it).
        let failure: unknown = group.length > 1 ? null : error;
        for (const c of group) {
          if (failure === null) {
            try {
              await this.store.putChunks([c], this.release);
              c.done();
              continue;
            } catch (single) {
              failure = single;
            }
          }
          c.failed(failure);
        }
      }
    }
    this.writing = false;
  }
}

/** The release's files as buffers of their signed size, filled chunk by chunk as they are verified. */
function assemble(files: readonly FileEntry[]) {
  const buffers = new Map(files.map((f) => [f.path, new Uint8Array(f.size)]));
  // Where each chunk goes: a chunk listed twice (or by two files) is copied to every place.
  const places = new Map<string, Array<{ out: Uint8Array; offset: number }>>();
  for (const file of files) {
    let offset = 0;
    for (const ref of file.chunks) {
      const list = places.get(ref.sha256) ?? [];
      list.push({ out: buffers.get(file.path)!, offset });
      places.set(ref.sha256, list);
      offset += ref.size;
    }
  }
  return {
    files: buffers,
    place(sha256: string, bytes: Uint8Array) {
      for (const { out, offset } of places.get(sha256) ?? []) out.set(bytes, offset);
    },
  };
}

async function fetchChunkWithRetries(ref: ChunkRef, options: DownloadOptions, signal: AbortSignal) {
  const attempts = options.attempts ?? DEFAULT_ATTEMPTS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetchChunk(ref, options, signal);
    } catch (error) {
      if (signal.aborted || attempt >= attempts || !isTransient(error)) throw error;
      // Exponential backoff with full jitter, so a fleet does not retry in step.
      await sleep(Math.random() * 250 * 2 ** attempt, signal);
    }
  }
}

/** The longest a transfer of `bytes` may take: first byte, then at least the minimum rate. */
export function transferDeadlineMs(
  bytes: number,
  rate: Pick<DownloadOptions, 'minBytesPerSecond' | 'firstByteMs'> = {},
): number {
  const perSecond = rate.minBytesPerSecond ?? DEFAULT_MIN_BYTES_PER_SECOND;
  return (rate.firstByteMs ?? DEFAULT_FIRST_BYTE_MS) + Math.ceil((bytes / perSecond) * 1000);
}

/**
 * One chunk's bytes, refusing more than the signed size (TUF 5.7.3: "download the target (up to
 * the number of bytes specified in the targets metadata)"), giving up on a stream that goes idle
 * (stallMs) and on one that is too slow overall (its size-based deadline, never re-armed).
 */
async function fetchChunk(ref: ChunkRef, options: DownloadOptions, signal: AbortSignal): Promise<Uint8Array> {
  const stallMs = options.stallMs ?? DEFAULT_STALL_MS;
  const deadlineMs = transferDeadlineMs(ref.size, options);
  const slow = new AbortController();
  const giveUp = (why: string) => slow.abort(new StalledDownloadError(`chunk ${ref.sha256} ${why}`));
  const deadline = setTimeout(
    () => giveUp(`did not arrive within its ${deadlineMs} ms deadline (${ref.size} bytes)`),
    deadlineMs,
  );
  let idle = setTimeout(() => giveUp(`made no progress for ${stallMs} ms`), stallMs);
  const rearm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => giveUp(`made no progress for ${stallMs} ms`), stallMs);
  };
  const url = `${options.server.replace(/\/$/, '')}/v1/chunks/${ref.sha256}`;
  try {
    let response: Response;
    try {
      response = await (options.fetch ?? fetch)(url, {
        // The store keeps the verified bytes; an HTTP-cache copy would double the disk used and
        // could replay a corrupted response forever. CDNs and proxies in between still cache.
        cache: 'no-store',
        signal: AbortSignal.any([signal, slow.signal]),
      });
    } catch (error) {
      throw transportError(error, ref, slow.signal);
    }
    if (!response.ok || !response.body) {
      throw new HttpStatusError(`chunk ${ref.sha256} answered ${response.status}`, response.status);
    }
    const declared = response.headers.get('content-length');
    if (declared !== null && Number(declared) !== ref.size) {
      await response.body.cancel();
      throw new LengthMismatchError(`chunk ${ref.sha256} is declared ${declared} bytes, signed ${ref.size}`);
    }
    const out = new Uint8Array(ref.size);
    let received = 0;
    const reader = response.body.getReader();
    // Not every body errors when its request's signal aborts: cancelling ends a pending read.
    const cancel = () => void reader.cancel().catch(() => {});
    slow.signal.addEventListener('abort', cancel, { once: true });
    signal.addEventListener('abort', cancel, { once: true });
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (slow.signal.aborted || signal.aborted) throw new Error('aborted');
        if (done) break;
        rearm();
        if (received + value.length > ref.size) {
          throw new LengthMismatchError(`chunk ${ref.sha256} sent more than its signed ${ref.size} bytes`);
        }
        out.set(value, received);
        received += value.length;
      }
    } catch (error) {
      cancel();
      if (error instanceof EdgeshipError) throw error;
      throw transportError(error, ref, slow.signal);
    } finally {
      slow.signal.removeEventListener('abort', cancel);
      signal.removeEventListener('abort', cancel);
    }
    if (received !== ref.size) {
      throw new LengthMismatchError(`chunk ${ref.sha256} ended after ${received} of ${ref.size} bytes`);
    }
    return out;
  } finally {
    clearTimeout(deadline);
    clearTimeout(idle);
  }
}

function transportError(error: unknown, ref: ChunkRef, slow: AbortSignal): EdgeshipError {
  if (slow.aborted) return slow.reason as StalledDownloadError;
  return new NetworkError(`chunk ${ref.sha256}: ${(error as Error).message}`, { cause: error });
}

function isTransient(error: unknown): boolean {
  if (!(error instanceof EdgeshipError)) return false;
  if (error.code === 'E_NETWORK' || error.code === 'E_STALLED' || error.code === 'E_LENGTH') return true;
  return error instanceof HttpStatusError && (error.status >= 500 || error.status === 429);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(abortError(signal));
      },
      { once: true },
    );
  });
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new NetworkError('download aborted');
}
