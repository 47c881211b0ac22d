import {
  type ChunkRef,
  canonicalJson,
  type FileEntry,
  HashMismatchError,
  LengthMismatchError,
  NotFoundError,
  parseValue,
  type Release,
  releaseId,
  type SignedRelease,
  SignedReleaseSchema,
  sha256Hex,
} from '@edgeship/protocol';
import { type DBSchema, type IDBPDatabase, type IDBPTransaction, openDB, type StoreNames } from 'idb';
import type { PartialFileHash } from '../download/arrival-hasher.ts';
import { createFileHasher } from './file-hash.ts';
import type { MetaKey, MetaSchema } from './meta-schema.ts';
import type { ReleaseFailures } from './release-failure.ts';
import { storageError } from './storage-pressure.ts';

export interface InstalledRelease {
  /** model@version, protocol releaseId(). */
  id: string;
  model: string;
  version: string;
  signed: SignedRelease;
  /** True once every chunk is stored and every file verified. */
  complete: boolean;
  installedAt: number;
  /** Sum of the release's file sizes (chunks shared with other releases are stored once). */
  bytes: number;
}

export interface ModelPointers {
  model: string;
  active: string | null;
  lastKnownGood: string | null;
  /** Complete, waiting to be activated on next load. */
  pending: string | null;
}

interface StoredChunk {
  size: number;
  bytes: Uint8Array;
}

interface ModelStoreSchema extends DBSchema {
  /** Content-addressed: key is the chunk's SHA-256, so a chunk shared by releases is stored once. */
  chunks: { key: string; value: StoredChunk; indexes: { bySize: number } };
  releases: { key: string; value: InstalledRelease; indexes: { byModel: string } };
  pointers: { key: string; value: ModelPointers };
  meta: { key: MetaKey; value: MetaSchema[MetaKey] };
}

type Names = StoreNames<ModelStoreSchema>;
type WriteTx<N extends Names[]> = IDBPTransaction<ModelStoreSchema, N, 'readwrite'>;

const DB_VERSION = 1;
/**
 * Chunk reads (and their hash checks) in flight while a file streams out of the store: about
 * 2 MiB at the average chunk size, 8 MiB at the chunker's largest.
 */
const READ_AHEAD = 8;

/**
 * Installed models in one IndexedDB database: content-addressed chunks, the releases that list
 * them, and per model which release is active, last known good and pending. Every pointer change
 * is one transaction, so a crash or a full disk never leaves a model pointing at nothing.
 * Works in a dedicated worker (no window, no DOM).
 */
export class ModelStore {
  private readonly fresh = new Map<string, Map<string, Uint8Array>>();

  private constructor(private readonly db: IDBPDatabase<ModelStoreSchema>) {}

  static async open(name = 'edgeship-models'): Promise<ModelStore> {
    const db = await openDB<ModelStoreSchema>(name, DB_VERSION, {
      upgrade(db) {
        db.createObjectStore('chunks').createIndex('bySize', 'size');
        db.createObjectStore('releases', { keyPath: 'id' }).createIndex('byModel', 'model');
        db.createObjectStore('pointers', { keyPath: 'model' });
        db.createObjectStore('meta');
      },
      /** Fires when a newer runtime (another tab) wants to upgrade the schema: let it. */
      blocking() {
        db.close();
      },
    });
    return new ModelStore(db);
  }

  async hasChunk(sha256: string): Promise<boolean> {
    return (await this.db.getKey('chunks', sha256)) !== undefined;
  }

  /** The release's chunks not stored yet, de-duplicated, in file order. */
  async missingChunks(release: Release): Promise<ChunkRef[]> {
    const unique = uniqueChunks(release);
    const store = this.db.transaction('chunks').store;
    const keys = await Promise.all(unique.map((c) => store.getKey(c.sha256)));
    return unique.filter((_, i) => keys[i] === undefined);
  }

  /** Stores a chunk after checking its hash: bytes that do not match are never written. */
  async putChunk(sha256: string, bytes: Uint8Array): Promise<void> {
    await this.putChunks([{ sha256, bytes }]);
  }

  /**
   * Stores several chunks in one transaction (the downloader groups the chunks that arrived
   * while the previous write committed), after checking every hash (crypto.subtle, in parallel):
   * if one does not match, none is written. `digest`, when given, is the chunk's SHA-256 already
   * being computed (the downloader starts it on arrival). A chunk already stored is written again
   * with the same bytes (content addressing), which costs less than a lookup per chunk.
   */
  async putChunks(
    chunks: ReadonlyArray<{ sha256: string; bytes: Uint8Array; digest?: Promise<string> }>,
  ): Promise<void> {
    const actual = await Promise.all(chunks.map((c) => c.digest ?? sha256Hex(c.bytes)));
    for (const [i, c] of chunks.entries()) {
      if (actual[i] !== c.sha256) {
        throw new HashMismatchError(`chunk ${c.sha256} arrived as bytes hashing to ${actual[i]}`);
      }
    }
    await this.write(['chunks'], async (tx) => {
      const store = tx.objectStore('chunks');
      const requests: Array<Promise<unknown>> = [];
      try {
        for (const { sha256, bytes } of chunks) {
          // Structured clone copies a view's whole buffer: a subarray of a big download would store it all.
          const own =
            bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
          requests.push(store.put({ size: own.length, bytes: own }, sha256));
        }
      } finally {
        // A put that throws aborts the transaction: the requests made before it fail with it.
        for (const request of requests) request.catch(() => {});
      }
      await Promise.all(requests);
    });
  }

  /**
   * Hands a just-downloaded, verified release's file bytes to the next readReleaseBytes of it in
   * this worker (a first load activates what it just downloaded: reading 200 MB back out of
   * IndexedDB and hashing it again would only repeat the download's checks). Held in memory
   * until taken or dropped.
   */
  handOver(id: string, files: Map<string, Uint8Array>): void {
    this.fresh.set(id, files);
  }

  /** The bytes handOver left for `id`, once: they are forgotten here as they are returned. */
  takeHandedOver(id: string): Map<string, Uint8Array> | undefined {
    const files = this.fresh.get(id);
    this.fresh.delete(id);
    return files;
  }

  /** Forgets bytes handed over and not taken (the load that wanted them failed or went elsewhere). */
  dropHandedOver(model?: string): void {
    for (const id of this.fresh.keys())
      if (model === undefined || id.startsWith(`${model}@`)) this.fresh.delete(id);
  }

  /** Records a release as incomplete (a download in progress). Never touches any pointer. */
  async putRelease(signed: SignedRelease): Promise<void> {
    const checked = parseValue(SignedReleaseSchema, signed, 'release');
    const release = checked.signed;
    const id = releaseId(release);
    await this.write(['releases'], async (tx) => {
      const existing = await tx.objectStore('releases').get(id);
      // A complete release stays as verified; an incomplete one is replaced only if its files differ.
      if (existing?.complete) return;
      if (existing && canonicalJson(existing.signed.signed.files) === canonicalJson(release.files)) return;
      await tx.objectStore('releases').put({
        id,
        model: release.model,
        version: release.version,
        signed: checked,
        complete: false,
        installedAt: Date.now(),
        bytes: release.files.reduce((n, f) => n + f.size, 0),
      });
    });
  }

  /** Marks a release complete; refuses (E_NOT_FOUND) while any of its chunks is missing. */
  async markComplete(id: string): Promise<void> {
    await this.write(['releases', 'chunks'], async (tx) => {
      const installed = requireRelease(await tx.objectStore('releases').get(id), id);
      const chunks = tx.objectStore('chunks');
      const unique = uniqueChunks(installed.signed.signed);
      const keys = await Promise.all(unique.map((c) => chunks.getKey(c.sha256)));
      const missing = unique.filter((_, i) => keys[i] === undefined).length;
      if (missing > 0) throw new NotFoundError(`${id} lacks ${missing} of its chunks`);
      if (!installed.complete) {
        await tx.objectStore('releases').put({ ...installed, complete: true, installedAt: Date.now() });
      }
    });
  }

  /**
   * A file's bytes in one buffer, the only copy made: chunks are read in file order, a few at a
   * time, each checked against its signed size and SHA-256 before it is copied in. The chunk list
   * is signed, so chunks that match it are the file the publisher hashed (verifyFile checked that
   * hash when the download completed); hashing chunk by chunk runs natively (crypto.subtle) and
   * never needs a second whole-file buffer.
   */
  async readFile(id: string, path: string): Promise<Uint8Array> {
    const file = await this.fileOf(id, path);
    const out = new Uint8Array(file.size);
    await this.readFilesInto(id, [path], out);
    return out;
  }

  /**
   * Several files of a release back to back in `out` (e.g. TF.js weight shards, which the engine
   * takes as one buffer), each chunk verified as in readFile. `out` must hold their total size.
   */
  async readFilesInto(id: string, paths: readonly string[], out: Uint8Array): Promise<void> {
    let offset = 0;
    for (const path of paths) {
      const file = await this.fileOf(id, path);
      if (offset + file.size > out.length) {
        throw new LengthMismatchError(`${id}/${path} does not fit the buffer given for it`);
      }
      // Storage can be corrupted or tampered with after the download was verified: every chunk
      // is hashed as soon as it is read (the read-ahead window's hashes run in parallel).
      const check = async (bytes: Uint8Array, ref: ChunkRef) => {
        if ((await sha256Hex(bytes)) !== ref.sha256) {
          throw new HashMismatchError(
            `${id}/${path}: stored chunk ${ref.sha256} no longer matches its signed SHA-256`,
          );
        }
      };
      await this.streamChunks(
        id,
        file,
        (bytes) => {
          out.set(bytes, offset);
          offset += bytes.length;
        },
        0,
        check,
      );
    }
  }

  /**
   * Checks a file's whole-file SHA-256 from its stored chunks, fed in file order to an
   * incremental hasher (file-hash.ts; crypto.subtle cannot stream): the file is never assembled
   * in memory. `partial` is a hash already fed the file's first chunks as they arrived (the
   * downloader's ArrivalHasher): only the rest is read back. Resolves with the most chunk bytes
   * held at once, for callers that bound memory, and how many chunks were read back.
   */
  async verifyFile(
    id: string,
    path: string,
    partial?: PartialFileHash,
  ): Promise<{ peakBytesHeld: number; chunksReadBack: number }> {
    const file = await this.fileOf(id, path);
    const hasher = partial?.hasher ?? (await createFileHasher());
    const from = partial?.nextChunk ?? 0;
    const peak = await this.streamChunks(id, file, (bytes) => hasher.update(bytes), from);
    if (hasher.hex() !== file.sha256) {
      throw new HashMismatchError(`${id}/${path} does not match its signed SHA-256`);
    }
    return { peakBytesHeld: peak, chunksReadBack: file.chunks.length - from };
  }

  private async fileOf(id: string, path: string): Promise<FileEntry> {
    const installed = requireRelease(await this.db.get('releases', id), id);
    const file = installed.signed.signed.files.find((f) => f.path === path);
    if (!file) throw new NotFoundError(`${id} has no file ${path}`);
    return file;
  }

  /**
   * Hands a file's stored chunks to `use` in file order, reading at most READ_AHEAD ahead so
   * IndexedDB (and `check`, run on each chunk as soon as it is read) works while `use` does;
   * checks each chunk's and the file's size. Starts at chunk `from` (the ones before it were
   * handed over earlier). Resolves with the most chunk bytes held at once (read but not yet
   * handed over, plus the one in hand).
   */
  private async streamChunks(
    id: string,
    file: FileEntry,
    use: (bytes: Uint8Array, ref: ChunkRef) => void | Promise<void>,
    from = 0,
    check?: (bytes: Uint8Array, ref: ChunkRef) => Promise<void>,
  ): Promise<number> {
    const reads: Array<Promise<StoredChunk>> = [];
    // Bytes read out of IndexedDB and not yet handed over: what streaming the file costs in memory.
    let held = 0;
    let peak = 0;
    const readAt = (i: number) => {
      if (i >= file.chunks.length) return;
      const ref = file.chunks[i]!;
      reads[i] = this.db.get('chunks', ref.sha256).then(async (chunk) => {
        if (!chunk) throw new NotFoundError(`chunk ${ref.sha256} of ${id} is not stored`);
        held += chunk.bytes.length;
        peak = Math.max(peak, held);
        if (chunk.bytes.length !== ref.size) {
          throw new LengthMismatchError(
            `chunk ${ref.sha256} of ${id} has ${chunk.bytes.length} bytes stored, signed ${ref.size}`,
          );
        }
        await check?.(chunk.bytes, ref);
        return chunk;
      });
      // Awaited in order below; a failure further ahead must not surface as unhandled first.
      reads[i].catch(() => {});
    };
    for (let i = from; i < from + READ_AHEAD; i++) readAt(i);
    let offset = file.chunks.slice(0, from).reduce((n, c) => n + c.size, 0);
    for (const [i, ref] of file.chunks.entries()) {
      if (i < from) continue;
      const chunk = await reads[i]!;
      delete reads[i];
      readAt(i + READ_AHEAD);
      await use(chunk.bytes, ref);
      held -= chunk.bytes.length;
      offset += chunk.bytes.length;
    }
    if (offset !== file.size) {
      throw new LengthMismatchError(`${id}/${file.path} has ${offset} bytes stored, expected ${file.size}`);
    }
    return peak;
  }

  getRelease(id: string): Promise<InstalledRelease | undefined> {
    return this.db.get('releases', id);
  }

  /** Releases in id order, optionally of one model. */
  listReleases(model?: string): Promise<InstalledRelease[]> {
    return model === undefined
      ? this.db.getAll('releases')
      : this.db.getAllFromIndex('releases', 'byModel', model);
  }

  async pointers(model: string): Promise<ModelPointers> {
    return (await this.db.get('pointers', model)) ?? emptyPointers(model);
  }

  /** Stages a complete release to run from the next load (null clears it). */
  async setPending(model: string, id: string | null): Promise<void> {
    await this.updatePointers(model, id, (p) => ({ ...p, pending: id }));
  }

  /** Switches what runs, in one transaction: active = id, pending = null. */
  async activate(model: string, id: string): Promise<void> {
    await this.updatePointers(model, id, (p) => ({ ...p, active: id, pending: null }));
  }

  /** Remembers a release that passed its health check as the rollback target. */
  async markGood(model: string, id: string): Promise<void> {
    await this.updatePointers(model, id, (p) => ({ ...p, lastKnownGood: id }));
  }

  /** Makes the last known good release active again, in one transaction, and returns it. */
  async rollback(model: string): Promise<string | null> {
    return this.write(['pointers'], async (tx) => {
      const p = (await tx.objectStore('pointers').get(model)) ?? emptyPointers(model);
      await tx.objectStore('pointers').put({ ...p, active: p.lastKnownGood });
      return p.lastKnownGood;
    });
  }

  /**
   * Forgets a release and clears every pointer naming it (active included: the caller decided).
   * Its chunks stay until collectGarbage, since other releases may share them.
   */
  async removeRelease(id: string): Promise<void> {
    await this.write(['releases', 'pointers'], async (tx) => {
      const installed = await tx.objectStore('releases').get(id);
      if (!installed) return;
      await tx.objectStore('releases').delete(id);
      const pointers = tx.objectStore('pointers');
      const p = await pointers.get(installed.model);
      if (!p) return;
      const clear = (v: string | null) => (v === id ? null : v);
      await pointers.put({
        ...p,
        active: clear(p.active),
        lastKnownGood: clear(p.lastKnownGood),
        pending: clear(p.pending),
      });
    });
  }

  /**
   * Deletes, per model, the complete releases no pointer names beyond the `keep.perModel` most
   * recently installed, then every chunk no remaining release lists. Incomplete releases are kept:
   * they are downloads in progress (or to resume), and their chunks must survive.
   * One transaction, so it cannot interleave with an activation or a download's writes.
   * `dryRun` only counts what would go (a quota check deciding whether collecting helps);
   * `alsoChunksOf` keeps the chunks of a release not recorded yet (the one about to download).
   */
  async collectGarbage(
    keep: { perModel: number; dryRun?: boolean; alsoChunksOf?: Pick<Release, 'files'> } = { perModel: 0 },
  ): Promise<{ chunksDeleted: number; bytesFreed: number }> {
    return this.write(['releases', 'pointers', 'chunks'], async (tx) => {
      const releases = await tx.objectStore('releases').getAll();
      const pinned = new Set<string | null>();
      for (const p of await tx.objectStore('pointers').getAll()) {
        pinned.add(p.active).add(p.lastKnownGood).add(p.pending);
      }
      const spare = new Map<string, InstalledRelease[]>();
      const kept: InstalledRelease[] = [];
      for (const r of releases) {
        if (!r.complete || pinned.has(r.id)) kept.push(r);
        else spare.set(r.model, [...(spare.get(r.model) ?? []), r]);
      }
      for (const list of spare.values()) {
        list.sort((a, b) => b.installedAt - a.installedAt);
        kept.push(...list.slice(0, Math.max(0, keep.perModel)));
        for (const r of list.slice(Math.max(0, keep.perModel))) {
          if (!keep.dryRun) await tx.objectStore('releases').delete(r.id);
        }
      }
      const referenced = new Set(
        [...kept.map((r) => r.signed.signed), ...(keep.alsoChunksOf ? [keep.alsoChunksOf] : [])].flatMap(
          (r) => r.files.flatMap((f) => f.chunks.map((c) => c.sha256)),
        ),
      );
      const chunks = tx.objectStore('chunks');
      const doomed: Array<{ sha256: string; size: number }> = [];
      // A key cursor on the size index reads hashes and sizes without loading any chunk's bytes.
      for (let c = await chunks.index('bySize').openKeyCursor(); c; c = await c.continue()) {
        if (!referenced.has(c.primaryKey)) doomed.push({ sha256: c.primaryKey, size: c.key });
      }
      if (!keep.dryRun) await Promise.all(doomed.map((d) => chunks.delete(d.sha256)));
      return { chunksDeleted: doomed.length, bytesFreed: doomed.reduce((n, d) => n + d.size, 0) };
    });
  }

  async getMeta<K extends MetaKey>(key: K): Promise<MetaSchema[K] | undefined> {
    return (await this.db.get('meta', key)) as MetaSchema[K] | undefined;
  }

  async setMeta<K extends MetaKey>(key: K, value: MetaSchema[K] | undefined): Promise<void> {
    await this.write(['meta'], async (tx) => {
      if (value === undefined) await tx.objectStore('meta').delete(key);
      else await tx.objectStore('meta').put(value, key);
    });
  }

  /**
   * Read-modify-write of one meta value in one transaction, so two tabs cannot lose each other's
   * change. `change` must be synchronous: awaiting anything else would commit the transaction.
   */
  async updateMeta<K extends MetaKey>(
    key: K,
    change: (value: MetaSchema[K] | undefined) => MetaSchema[K] | undefined,
  ): Promise<MetaSchema[K] | undefined> {
    return this.write(['meta'], async (tx) => {
      const meta = tx.objectStore('meta');
      const next = change((await meta.get(key)) as MetaSchema[K] | undefined);
      if (next === undefined) await meta.delete(key);
      else await meta.put(next, key);
      return next;
    });
  }

  /** The activation failures remembered per release id (worker/failure-book.ts decides what they mean). */
  async releaseFailures(): Promise<ReleaseFailures> {
    return (await this.getMeta('release-failures')) ?? {};
  }

  async updateReleaseFailures(
    change: (failures: ReleaseFailures) => ReleaseFailures,
  ): Promise<ReleaseFailures> {
    return (await this.updateMeta('release-failures', (value) => change({ ...value }))) ?? {};
  }

  /**
   * After a stored file of `id` failed its hash: deletes the chunks of `id` whose bytes no longer
   * hash to their name and marks every release that lists one incomplete, so the next download
   * fetches exactly those again. Returns how many chunks were dropped.
   */
  async dropCorruptChunks(id: string): Promise<number> {
    const installed = requireRelease(await this.db.get('releases', id), id);
    const corrupt: string[] = [];
    for (const ref of uniqueChunks(installed.signed.signed)) {
      const chunk = await this.db.get('chunks', ref.sha256);
      // Hashed outside any transaction: crypto.subtle would let an IndexedDB transaction commit.
      if (chunk && (await sha256Hex(chunk.bytes)) !== ref.sha256) corrupt.push(ref.sha256);
    }
    if (corrupt.length === 0) return 0;
    const doomed = new Set(corrupt);
    await this.write(['releases', 'chunks'], async (tx) => {
      for (const sha256 of corrupt) await tx.objectStore('chunks').delete(sha256);
      for (const release of await tx.objectStore('releases').getAll()) {
        const lists = release.signed.signed.files.some((f) => f.chunks.some((c) => doomed.has(c.sha256)));
        if (lists && release.complete) await tx.objectStore('releases').put({ ...release, complete: false });
      }
    });
    return corrupt.length;
  }

  /** Counts and stored bytes (each shared chunk once). */
  async usage(): Promise<{ releases: number; chunks: number; bytes: number }> {
    const tx = this.db.transaction(['releases', 'chunks']);
    let bytes = 0;
    for (let c = await tx.objectStore('chunks').index('bySize').openKeyCursor(); c; c = await c.continue()) {
      bytes += c.key;
    }
    return {
      releases: await tx.objectStore('releases').count(),
      chunks: await tx.objectStore('chunks').count(),
      bytes,
    };
  }

  close(): void {
    this.fresh.clear();
    this.db.close();
  }

  /** Changes one model's pointers after checking `id` names a complete release of that model. */
  private async updatePointers(
    model: string,
    id: string | null,
    change: (p: ModelPointers) => ModelPointers,
  ) {
    await this.write(['releases', 'pointers'], async (tx) => {
      if (id !== null) {
        const installed = requireRelease(await tx.objectStore('releases').get(id), id);
        if (installed.model !== model) throw new NotFoundError(`${id} is not a release of ${model}`);
        if (!installed.complete) throw new NotFoundError(`${id} is not completely downloaded`);
      }
      const pointers = tx.objectStore('pointers');
      await pointers.put(change((await pointers.get(model)) ?? emptyPointers(model)));
    });
  }

  /**
   * Runs `work` in one readwrite transaction. Any failure aborts it, so nothing of it is stored;
   * running out of quota (on a request or at commit) becomes E_QUOTA.
   */
  private async write<N extends Names[], T>(names: N, work: (tx: WriteTx<N>) => Promise<T>): Promise<T> {
    const tx = this.db.transaction(names, 'readwrite');
    // Observed through the await below; without this an abort is also an unhandled rejection.
    tx.done.catch(() => {});
    try {
      const result = await work(tx);
      await tx.done;
      return result;
    } catch (error) {
      const transactionError = tx.error;
      try {
        tx.abort();
      } catch {
        // Already committed or aborted: nothing left to undo.
      }
      throw storageError(error, transactionError);
    }
  }
}

function emptyPointers(model: string): ModelPointers {
  return { model, active: null, lastKnownGood: null, pending: null };
}

function requireRelease(installed: InstalledRelease | undefined, id: string): InstalledRelease {
  if (!installed) throw new NotFoundError(`release ${id} is not installed`);
  return installed;
}

/** A release's chunks with each hash once, in file order. */
function uniqueChunks(release: Pick<Release, 'files'>): ChunkRef[] {
  const seen = new Set<string>();
  const out: ChunkRef[] = [];
  for (const file of release.files) {
    for (const chunk of file.chunks) {
      if (seen.has(chunk.sha256)) continue;
      seen.add(chunk.sha256);
      out.push(chunk);
    }
  }
  return out;
}
