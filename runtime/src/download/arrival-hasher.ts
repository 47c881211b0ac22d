import type { FileEntry } from '@edgeship/protocol';
import { createFileHasher, type FileHasher } from '../store/file-hash.ts';

/** Chunk bytes held back, per release, waiting for an earlier chunk of their file to arrive. */
const DEFAULT_MAX_HELD_BYTES = 8 * 1024 * 1024;

/** How far one file's hash got from the chunks that arrived: the store hashes the rest. */
export interface PartialFileHash {
  hasher: FileHasher;
  /** Index in the file's chunk list of the first chunk not hashed yet. */
  nextChunk: number;
}

/**
 * Whole-file SHA-256s computed while a release downloads. Chunks arrive out of order (several
 * lanes), so each file's hasher takes them in file order: a chunk that arrives early is held
 * until the ones before it are hashed, up to a byte budget; past it, or for a chunk stored by an
 * earlier attempt, the hash stops advancing, and the store finishes it from stored chunks after
 * the download (ModelStore.verifyFile). Memory stays bounded whatever the file size.
 */
export class ArrivalHasher {
  private readonly files: Array<{
    entry: FileEntry;
    partial: PartialFileHash;
    /** Each chunk hash's last index in the file: held bytes are needed while it is not behind. */
    lastIndex: Map<string, number>;
  }> = [];
  private readonly held = new Map<string, Uint8Array>();
  private heldBytes = 0;
  /** The most chunk bytes held back at once. */
  peakHeldBytes = 0;

  private constructor(private readonly maxHeldBytes: number) {}

  static async create(files: readonly FileEntry[], maxHeldBytes = DEFAULT_MAX_HELD_BYTES) {
    const arrival = new ArrivalHasher(maxHeldBytes);
    for (const entry of files) {
      const lastIndex = new Map(entry.chunks.map((c, i) => [c.sha256, i]));
      arrival.files.push({ entry, lastIndex, partial: { hasher: await createFileHasher(), nextChunk: 0 } });
    }
    return arrival;
  }

  /** A chunk that arrived and matched its signed hash. */
  offer(sha256: string, bytes: Uint8Array): void {
    let wanted = false;
    for (const file of this.files) {
      const { chunks } = file.entry;
      if (chunks[file.partial.nextChunk]?.sha256 === sha256) this.advance(file, sha256, bytes);
      wanted ||= this.waitsFor(file, sha256);
    }
    if (wanted && !this.held.has(sha256) && this.heldBytes + bytes.length <= this.maxHeldBytes) {
      this.held.set(sha256, bytes);
      this.heldBytes += bytes.length;
      this.peakHeldBytes = Math.max(this.peakHeldBytes, this.heldBytes);
    }
    this.release();
  }

  /** Where each file's hash stands, by path; the held chunks are let go. */
  finish(): Map<string, PartialFileHash> {
    this.held.clear();
    this.heldBytes = 0;
    return new Map(this.files.map((f) => [f.entry.path, f.partial]));
  }

  /** Hashes the arrived chunk, then every chunk after it that arrived earlier, in file order. */
  private advance(file: (typeof this.files)[number], sha256: string, bytes: Uint8Array) {
    const { chunks } = file.entry;
    const arrived = (ref: { sha256: string } | undefined) =>
      ref && (ref.sha256 === sha256 ? bytes : this.held.get(ref.sha256));
    for (let next = arrived(chunks[file.partial.nextChunk]); next; ) {
      file.partial.hasher.update(next);
      file.partial.nextChunk += 1;
      next = arrived(chunks[file.partial.nextChunk]);
    }
  }

  private waitsFor(file: (typeof this.files)[number], sha256: string): boolean {
    return (file.lastIndex.get(sha256) ?? -1) >= file.partial.nextChunk;
  }

  /** Drops held chunks no file still waits for. */
  private release() {
    for (const [sha256, bytes] of this.held) {
      if (!this.files.some((f) => this.waitsFor(f, sha256))) {
        this.held.delete(sha256);
        this.heldBytes -= bytes.length;
      }
    }
  }
}
