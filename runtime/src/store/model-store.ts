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
import { Packs } from './packs.ts';
import type { ReleaseFailures } from './release-failure.ts';
import { storageError } from './storage-pressure.ts';

type PackReaders = ReturnType<Packs['readers']>;

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

/**
 * A verified chunk's bytes at `offset` of the pack of file content `file` (its signed SHA-256;
 * packs.ts). Written only after the bytes are flushed, so a place never names bytes that are not
 * there; every read still hashes them (a disk can rot after the write).
 */
export interface Place {
  file: string;
  offset: number;
  sha256: string;
  size: number;
}

interface ModelStoreSchema extends DBSchema {
  /** Content-addressed: key is the chunk's SHA-256, so a chunk shared by releases is stored once. */
  chunks: { key: string; value: StoredChunk; indexes: { bySize: number } };
  /** Chunks stored in OPFS packs, keyed [file, offset]: where a dedicated worker stores them. */
  places: { key: [string, number]; value: Place; indexes: { bySha: string; byFile: string } };
  releases: { key: string; value: InstalledRelease; indexes: { byModel: string } };
  pointers: { key: string; value: ModelPointers };
  meta: { key: MetaKey; value: MetaSchema[MetaKey] };
}

type Names = StoreNames<ModelStoreSchema>;
type WriteTx<N extends Names[]> = IDBPTransaction<ModelStoreSchema, N, 'readwrite'>;

const DB_VERSION = 2;
/**
 * Chunk reads (and their hash checks) in flight while a file streams out of the store: about
 * 2 MiB at the average chunk size, 8 MiB at the chunker's largest.
 */
const READ_AHEAD = 8;
/** Places copied into a pack per write (fillPlaces): a few MiB at a time. */
const FILL_GROUP = 16;
/** Bytes of a pack hashed per read when a whole-file hash is checked from it. */
const PACK_READ_BYTES = 4 * 1024 * 1024;
/** Chunk hashes in flight while a file read from its pack is checked. */
const HASHES_IN_FLIGHT = 8;

/**
 * Installed models: the releases, per model which release is active, last known good and
 * pending, and the verified chunks, in one IndexedDB database. Chunk bytes are IndexedDB values
 * keyed by the chunk's SHA-256; with packs turned on (open's `packs`, in a dedicated worker) they
 * go to an OPFS pack at each of their places in the release's files instead (packs.ts: one read
 * per file at load), and IndexedDB records the places. Both are read, so chunks stored either way
 * are found and shared. Every pointer change is one transaction, so a crash or a full disk never
 * leaves a model pointing at nothing.
 */
export class ModelStore {
  private readonly fresh = new Map<string, Map<string, Uint8Array>>();
  /** Places written to packs, not yet flushed and recorded (writePlaces). */
  private readonly unrecorded: Place[] = [];
  private recording: Promise<void> | null = null;
  private recordError: unknown = null;

  private constructor(
    private readonly db: IDBPDatabase<ModelStoreSchema>,
    /** Null: no OPFS here. Written only where `writable` (a dedicated worker); read anywhere. */
    readonly packs: Packs | null,
  ) {}

  /**
   * `packs: true` stores chunk bytes in OPFS packs where a dedicated worker can write them (the
   * runtime's worker does; ARCHITECTURE.md, "Packs"); without it, or where OPFS is missing, they
   * are IndexedDB values. Packs written earlier are read either way. `packWriterUrl`: a worker
   * script serving the pack writer (pack-writer.ts), which then writes packs in a nested worker,
   * off this thread (writes made in place block it: the downloads' body reads waited for them).
   */
  static async open(
    name = 'edgeship-models',
    options: { packs?: boolean; packWriterUrl?: string | URL } = {},
  ): Promise<ModelStore> {
    let created = false;
    const db = await openDB<ModelStoreSchema>(name, DB_VERSION, {
      upgrade(db, oldVersion) {
        if (oldVersion < 1) {
          created = true;
          db.createObjectStore('chunks').createIndex('bySize', 'size');
          db.createObjectStore('releases', { keyPath: 'id' }).createIndex('byModel', 'model');
          db.createObjectStore('pointers', { keyPath: 'model' });
          db.createObjectStore('meta');
        }
        if (oldVersion < 2) {
          const places = db.createObjectStore('places', { keyPath: ['file', 'offset'] });
          places.createIndex('bySha', 'sha256');
          places.createIndex('byFile', 'file');
        }
      },
      /** Fires when a newer runtime (another tab) wants to upgrade the schema: let it. */
      blocking() {
        db.close();
      },
    });
    const packs = await Packs.open(name, {
      write: options.packs === true,
      writerUrl: options.packWriterUrl,
    });
    // A new database knows no pack: any left are from a database deleted without its packs.
    if (created && packs) for (const file of await packs.list()) await packs.remove(file);
    return new ModelStore(db, packs);
  }

  async hasChunk(sha256: string): Promise<boolean> {
    const tx = this.db.transaction(['chunks', 'places']);
    const [row, place] = await Promise.all([
      tx.objectStore('chunks').getKey(sha256),
      tx.objectStore('places').index('bySha').getKey(sha256),
    ]);
    return row !== undefined || place !== undefined;
  }

  /** The release's chunks stored nowhere yet (neither as values nor in a pack), de-duplicated, in file order. */
  async missingChunks(release: Pick<Release, 'files'>): Promise<ChunkRef[]> {
    const unique = uniqueChunks(release);
    const tx = this.db.transaction(['chunks', 'places']);
    const rows = tx.objectStore('chunks');
    const places = tx.objectStore('places').index('bySha');
    const found = await Promise.all(
      unique.map(async (c) => (await rows.getKey(c.sha256)) ?? (await places.getKey(c.sha256))),
    );
    return unique.filter((_, i) => found[i] === undefined);
  }

  /**
   * Bytes a download of `release` still has to write: its missing chunks, and with packs every
   * place of its files not filled yet (a chunk stored elsewhere is copied into the file's pack).
   */
  async bytesToStore(release: Pick<Release, 'files'>): Promise<number> {
    if (!this.packs?.writable) return (await this.missingChunks(release)).reduce((n, c) => n + c.size, 0);
    const filled = await this.filledPlaces(release);
    let bytes = 0;
    for (const place of placesOf(release)) if (!filled.has(placeKey(place))) bytes += place.size;
    return bytes;
  }

  /** Stores a chunk (as an IndexedDB value) after checking its hash: bytes that do not match are never written. */
  async putChunk(sha256: string, bytes: Uint8Array): Promise<void> {
    await this.putChunks([{ sha256, bytes }]);
  }

  /**
   * Stores several chunks, after checking every hash (crypto.subtle, in parallel): if one does not
   * match, none is written. `digest`, when given, is the chunk's SHA-256 already being computed
   * (the downloader starts it on arrival). With packs and the `release` being downloaded, each
   * chunk goes to every place its release's files have for it, recorded in the background
   * (drainWrites waits for that and says if it failed); otherwise as IndexedDB values in
   * one transaction (the downloader groups the chunks that arrived while the previous write
   * committed). A chunk already stored is written again with the same bytes (content addressing),
   * which costs less than a lookup per chunk.
   */
  async putChunks(
    chunks: ReadonlyArray<{ sha256: string; bytes: Uint8Array; digest?: Promise<string> }>,
    release?: Pick<Release, 'files'>,
  ): Promise<void> {
    const actual = await Promise.all(chunks.map((c) => c.digest ?? sha256Hex(c.bytes)));
    for (const [i, c] of chunks.entries()) {
      if (actual[i] !== c.sha256) {
        throw new HashMismatchError(`chunk ${c.sha256} arrived as bytes hashing to ${actual[i]}`);
      }
    }
    if (this.packs?.writable && release) {
      const bySha = new Map(chunks.map((c) => [c.sha256, c.bytes]));
      const writes: Array<Place & { bytes: Uint8Array }> = [];
      for (const place of placesOf(release)) {
        const bytes = bySha.get(place.sha256);
        if (bytes) writes.push({ ...place, bytes });
      }
      await this.writePlaces(writes);
      return;
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
   * Fills the places of `release`'s files that no download wrote: chunks it shares with other
   * releases, stored in another pack or as IndexedDB values, are copied (and hashed again on the
   * way) into this release's packs, so each of its files reads back in one piece. No-op without packs.
   */
  async fillPlaces(release: Pick<Release, 'files'>): Promise<void> {
    if (!this.packs?.writable) return;
    const filled = await this.filledPlaces(release);
    const empty = placesOf(release).filter((p) => !filled.has(placeKey(p)));
    const readers = this.packs.readers();
    try {
      for (let i = 0; i < empty.length; i += FILL_GROUP) {
        const group = empty.slice(i, i + FILL_GROUP);
        const writes: Array<Place & { bytes: Uint8Array }> = [];
        for (const place of group) {
          const bytes = await this.readChunkAnywhere(place, readers);
          if ((await sha256Hex(bytes)) !== place.sha256) {
            throw new HashMismatchError(`stored chunk ${place.sha256} no longer matches its signed SHA-256`);
          }
          writes.push({ ...place, bytes });
        }
        await this.writePlaces(writes);
      }
      await this.drainWrites();
    } finally {
      readers.done();
    }
  }

  /**
   * Writes verified bytes at their places, pack by pack (through each pack's writer, which holds
   * its lock until closeWriters), and queues the places to be recorded: a write does not wait for
   * its flush and transaction (those took 70% of a 200 MB download when each write group waited
   * for its own), so the downloader's lanes go on while the last writes are made durable together.
   */
  private async writePlaces(writes: ReadonlyArray<Place & { bytes: Uint8Array }>): Promise<void> {
    this.throwRecordError();
    const packs = this.packs!;
    const byFile = new Map<string, Array<Place & { bytes: Uint8Array }>>();
    for (const w of writes) byFile.set(w.file, [...(byFile.get(w.file) ?? []), w]);
    for (const [file, pieces] of byFile) await (await packs.writer(file)).write(pieces);
    this.unrecorded.push(...writes.map(({ file, offset, sha256, size }) => ({ file, offset, sha256, size })));
    this.recording ??= this.recordPlaces();
  }

  /**
   * Records the places written so far, each batch after flushing its packs: a place never names
   * bytes that are not on disk. One flush and one transaction for whatever was written meanwhile.
   */
  private async recordPlaces(): Promise<void> {
    while (this.unrecorded.length > 0 && this.recordError === null) {
      const batch = this.unrecorded.splice(0);
      try {
        await this.packs!.flush(new Set(batch.map((p) => p.file)));
        await this.write(['places'], async (tx) => {
          const store = tx.objectStore('places');
          await Promise.all(batch.map((place) => store.put(place)));
        });
      } catch (error) {
        this.recordError = error;
      }
    }
    this.recording = null;
  }

  /** Waits until every place written is recorded; throws (once) what made recording fail. */
  async drainWrites(): Promise<void> {
    while (this.recording) await this.recording;
    this.throwRecordError();
  }

  private throwRecordError(): void {
    const error = this.recordError;
    if (error === null) return;
    this.recordError = null;
    this.unrecorded.length = 0;
    throw error;
  }

  /** Closes the packs a download of `release` wrote (their locks go with them): downloadRelease calls it when it ends. */
  async closeWriters(release: Pick<Release, 'files'>): Promise<void> {
    await this.packs?.closeWriters(release.files.map((f) => f.sha256));
  }

  /** Which places of `release`'s files hold their chunk (by placeKey). */
  private async filledPlaces(release: Pick<Release, 'files'>): Promise<Set<string>> {
    const files = [...new Set(release.files.map((f) => f.sha256))];
    const index = this.db.transaction('places').store.index('byFile');
    const lists = await Promise.all(files.map((f) => index.getAll(f)));
    return new Set(lists.flat().map(placeKey));
  }

  /** A chunk's bytes from wherever they are stored: its own place, any other place, or a value. Not hashed. */
  private async readChunkAnywhere(
    want: Pick<Place, 'sha256' | 'size'> & Partial<Place>,
    readers: PackReaders,
  ): Promise<Uint8Array> {
    const tx = this.db.transaction(['chunks', 'places']);
    const own =
      want.file !== undefined && want.offset !== undefined
        ? await tx.objectStore('places').get([want.file, want.offset])
        : undefined;
    const place =
      own?.sha256 === want.sha256 ? own : await tx.objectStore('places').index('bySha').get(want.sha256);
    const row = place ? undefined : await tx.objectStore('chunks').get(want.sha256);
    if (row) return row.bytes;
    if (!place) throw new NotFoundError(`chunk ${want.sha256} is not stored`);
    const out = new Uint8Array(place.size);
    await readers.read(place.file, out, place.offset);
    return out;
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

  /** Marks a release complete; refuses (E_NOT_FOUND) while any of its chunks is stored nowhere. */
  async markComplete(id: string): Promise<void> {
    await this.write(['releases', 'chunks', 'places'], async (tx) => {
      const installed = requireRelease(await tx.objectStore('releases').get(id), id);
      const rows = tx.objectStore('chunks');
      const places = tx.objectStore('places').index('bySha');
      const unique = uniqueChunks(installed.signed.signed);
      const found = await Promise.all(
        unique.map(async (c) => (await rows.getKey(c.sha256)) ?? (await places.getKey(c.sha256))),
      );
      const missing = found.filter((k) => k === undefined).length;
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
      if (await this.packHolds(file)) {
        await this.readPackInto(id, file, out.subarray(offset, offset + file.size));
        offset += file.size;
        continue;
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
    const peak = (await this.packHolds(file))
      ? await this.hashPack(file, from, (bytes) => hasher.update(bytes))
      : await this.streamChunks(id, file, (bytes) => hasher.update(bytes), from);
    if (hasher.hex() !== file.sha256) {
      throw new HashMismatchError(`${id}/${path} does not match its signed SHA-256`);
    }
    return { peakBytesHeld: peak, chunksReadBack: file.chunks.length - from };
  }

  /** True when the file's pack has every one of its chunks at its place (one read serves the file). */
  private async packHolds(file: FileEntry): Promise<boolean> {
    if (!this.packs) return false;
    const filled = await this.filledPlaces({ files: [file] });
    return placesOf({ files: [file] }).every((p) => filled.has(placeKey(p)));
  }

  /**
   * A file read from its pack in one call into `out`, then every chunk hashed from `out` against
   * the signed list (a few hashes in flight): corruption after the download is still caught.
   */
  private async readPackInto(id: string, file: FileEntry, out: Uint8Array): Promise<void> {
    await this.packs!.readInto(file.sha256, out);
    let offset = 0;
    const refs = file.chunks.map((ref) => {
      const at = offset;
      offset += ref.size;
      return { ref, at };
    });
    let next = 0;
    const lane = async () => {
      while (next < refs.length) {
        const { ref, at } = refs[next++]!;
        if ((await sha256Hex(out.subarray(at, at + ref.size))) !== ref.sha256) {
          throw new HashMismatchError(
            `${id}/${file.path}: stored chunk ${ref.sha256} no longer matches its signed SHA-256`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: HASHES_IN_FLIGHT }, lane));
  }

  /** Feeds a file's pack from chunk `from` on to `use`, PACK_READ_BYTES at a time. Resolves with that size. */
  private async hashPack(file: FileEntry, from: number, use: (bytes: Uint8Array) => void): Promise<number> {
    let at = file.chunks.slice(0, from).reduce((n, c) => n + c.size, 0);
    const block = new Uint8Array(Math.min(PACK_READ_BYTES, Math.max(1, file.size - at)));
    const reader = await this.packs!.reader(file.sha256);
    try {
      while (at < file.size) {
        const piece = block.subarray(0, Math.min(block.length, file.size - at));
        await reader.read(piece, at);
        use(piece);
        at += piece.length;
      }
    } finally {
      reader.close();
    }
    return block.length;
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
    // Chunks in packs (another release's, say) are read through one reader per pack.
    const readers = this.packs?.readers();
    try {
      // Bytes read out of storage and not yet handed over: what streaming the file costs in memory.
      let held = 0;
      let peak = 0;
      const readAt = (i: number) => {
        if (i >= file.chunks.length) return;
        const ref = file.chunks[i]!;
        reads[i] = this.storedChunk(ref, readers).then(async (chunk) => {
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
    } finally {
      readers?.done();
    }
  }

  /** A chunk's stored bytes (an IndexedDB value, or read from a pack that has it), undefined when stored nowhere. */
  private async storedChunk(
    ref: ChunkRef,
    readers: PackReaders | undefined,
  ): Promise<StoredChunk | undefined> {
    const row = await this.db.get('chunks', ref.sha256);
    if (row) return row;
    const place = readers ? await this.db.getFromIndex('places', 'bySha', ref.sha256) : undefined;
    if (!place || !readers) return undefined;
    const bytes = new Uint8Array(place.size);
    await readers.read(place.file, bytes, place.offset);
    return { size: place.size, bytes };
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
   * recently installed, then every chunk no remaining release lists and every pack no remaining
   * release has a file of. Incomplete releases are kept: they are downloads in progress (or to
   * resume), and their chunks must survive.
   * One transaction, so it cannot interleave with an activation or a download's writes; the packs
   * it frees are removed after it commits, each under its lock once no place names it.
   * `dryRun` only counts what would go (a quota check deciding whether collecting helps);
   * `alsoChunksOf` keeps the chunks of a release not recorded yet (the one about to download).
   */
  async collectGarbage(
    keep: { perModel: number; dryRun?: boolean; alsoChunksOf?: Pick<Release, 'files'> } = { perModel: 0 },
  ): Promise<{ chunksDeleted: number; bytesFreed: number }> {
    const result = await this.write(['releases', 'pointers', 'chunks', 'places'], async (tx) => {
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
      const keptReleases = kept.map((r) => r.signed.signed);
      const places = await tx.objectStore('places').getAll();
      const filled = new Set(places.map(placeKey));
      // A chunk value is needed while a kept release has no pack holding it at its place.
      const needValues = keptReleases.filter((r) => !placesOf(r).every((p) => filled.has(placeKey(p))));
      const referenced = new Set(
        [...needValues, ...(keep.alsoChunksOf ? [keep.alsoChunksOf] : [])].flatMap((r) =>
          r.files.flatMap((f) => f.chunks.map((c) => c.sha256)),
        ),
      );
      const chunks = tx.objectStore('chunks');
      const doomed: Array<{ sha256: string; size: number }> = [];
      // A key cursor on the size index reads hashes and sizes without loading any chunk's bytes.
      for (let c = await chunks.index('bySize').openKeyCursor(); c; c = await c.continue()) {
        if (!referenced.has(c.primaryKey)) doomed.push({ sha256: c.primaryKey, size: c.key });
      }
      if (!keep.dryRun) await Promise.all(doomed.map((d) => chunks.delete(d.sha256)));
      // A pack stays while a kept release has its file, or while the release about to download
      // can copy a chunk out of it.
      const listed = new Set(keptReleases.flatMap((r) => r.files.map((f) => f.sha256)));
      const wanted = new Set(keep.alsoChunksOf?.files.flatMap((f) => f.chunks.map((c) => c.sha256)) ?? []);
      const keptPacks = new Set(
        places.filter((p) => listed.has(p.file) || wanted.has(p.sha256)).map((p) => p.file),
      );
      const doomedPlaces = places.filter((p) => !keptPacks.has(p.file));
      if (!keep.dryRun) {
        await Promise.all(doomedPlaces.map((p) => tx.objectStore('places').delete([p.file, p.offset])));
      }
      return {
        chunksDeleted: doomed.length + doomedPlaces.length,
        bytesFreed: [...doomed, ...doomedPlaces].reduce((n, d) => n + d.size, 0),
        freedPacks: [...new Set(doomedPlaces.map((p) => p.file))],
      };
    });
    if (!keep.dryRun) for (const file of result.freedPacks) await this.removePack(file);
    return { chunksDeleted: result.chunksDeleted, bytesFreed: result.bytesFreed };
  }

  /** Removes a pack once no place names it (a download may have started writing it again since). */
  private async removePack(file: string): Promise<void> {
    if (!this.packs?.writable) return;
    await this.packs.remove(file, async () => (await this.db.countFromIndex('places', 'byFile', file)) === 0);
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
   * hash to their name (IndexedDB values, and places in the release's packs) and marks every
   * release that lists one incomplete, so the next download fetches exactly those again. Returns
   * how many chunks were dropped.
   */
  async dropCorruptChunks(id: string): Promise<number> {
    const installed = requireRelease(await this.db.get('releases', id), id);
    const release = installed.signed.signed;
    const corrupt: string[] = [];
    const corruptPlaces: Place[] = [];
    for (const ref of uniqueChunks(release)) {
      const chunk = await this.db.get('chunks', ref.sha256);
      // Hashed outside any transaction: crypto.subtle would let an IndexedDB transaction commit.
      if (chunk && (await sha256Hex(chunk.bytes)) !== ref.sha256) corrupt.push(ref.sha256);
    }
    if (this.packs) {
      const filled = await this.filledPlaces(release);
      const readers = this.packs.readers();
      try {
        for (const place of placesOf(release)) {
          if (!filled.has(placeKey(place))) continue;
          const bytes = new Uint8Array(place.size);
          const readable = await readers.read(place.file, bytes, place.offset).then(
            () => true,
            () => false,
          );
          if (!readable || (await sha256Hex(bytes)) !== place.sha256) corruptPlaces.push(place);
        }
      } finally {
        readers.done();
      }
    }
    if (corrupt.length + corruptPlaces.length === 0) return 0;
    const doomed = new Set([...corrupt, ...corruptPlaces.map((p) => p.sha256)]);
    await this.write(['releases', 'chunks', 'places'], async (tx) => {
      for (const sha256 of corrupt) await tx.objectStore('chunks').delete(sha256);
      for (const p of corruptPlaces) await tx.objectStore('places').delete([p.file, p.offset]);
      for (const release of await tx.objectStore('releases').getAll()) {
        const lists = release.signed.signed.files.some((f) => f.chunks.some((c) => doomed.has(c.sha256)));
        if (lists && release.complete) await tx.objectStore('releases').put({ ...release, complete: false });
      }
    });
    return corrupt.length + corruptPlaces.length;
  }

  /** Counts and stored bytes (each shared chunk value once; each filled place of a pack). */
  async usage(): Promise<{ releases: number; chunks: number; bytes: number }> {
    const tx = this.db.transaction(['releases', 'chunks', 'places']);
    let bytes = 0;
    for (let c = await tx.objectStore('chunks').index('bySize').openKeyCursor(); c; c = await c.continue()) {
      bytes += c.key;
    }
    const places = await tx.objectStore('places').getAll();
    bytes += places.reduce((n, p) => n + p.size, 0);
    return {
      releases: await tx.objectStore('releases').count(),
      chunks: (await tx.objectStore('chunks').count()) + places.length,
      bytes,
    };
  }

  close(): void {
    this.fresh.clear();
    void this.packs?.close();
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

/** Every place of a release's files (a file content listed twice counts once), in file order. */
function placesOf(release: Pick<Release, 'files'>): Place[] {
  const seen = new Set<string>();
  const out: Place[] = [];
  for (const file of release.files) {
    let offset = 0;
    for (const chunk of file.chunks) {
      const place = { file: file.sha256, offset, sha256: chunk.sha256, size: chunk.size };
      offset += chunk.size;
      if (seen.has(placeKey(place))) continue;
      seen.add(placeKey(place));
      out.push(place);
    }
  }
  return out;
}

/** A place's identity, including what it must hold: a place recorded for other bytes is not filled. */
function placeKey(p: Place): string {
  return `${p.file}:${p.offset}:${p.sha256}:${p.size}`;
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
