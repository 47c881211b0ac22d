import { Readable } from 'node:stream';
import { LengthMismatchError, readCapped } from '@edgeship/protocol';
import { type Kysely, sql } from 'kysely';
import { assertChunkHash, assertChunkName } from './chunk-hash.ts';
import type { Database } from './schema.ts';
import type { BlobStore } from './types.ts';

/**
 * Chunks as rows of `chunks` in the registry's PostgreSQL database, so stateless server processes
 * share them with no shared file system. Chunks are at most 16 MiB (protocol ChunkRefSchema),
 * well under bytea's 1 GB limit.
 */
/** Bytes per query when streaming a chunk. */
const PG_SLICE_BYTES = 1024 * 1024;

export class PgBlobStore implements BlobStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly onClose: () => Promise<void> = async () => {},
  ) {}

  async put(sha256: string, bytes: Uint8Array): Promise<void> {
    assertChunkHash(sha256, bytes);
    // Immutable content: a racing writer of the same hash stored the same bytes.
    await this.db
      .insertInto('chunks')
      .values({
        sha256,
        size: bytes.byteLength,
        bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      })
      .onConflict((oc) => oc.column('sha256').doNothing())
      .execute();
  }

  /** A bytea row is written whole, so the chunk is gathered first: at most `maxBytes`. */
  async putStream(sha256: string, body: AsyncIterable<Uint8Array>, maxBytes: number): Promise<number> {
    assertChunkName(sha256);
    const bytes = await readCapped(
      body,
      maxBytes,
      () => new LengthMismatchError(`the chunk exceeds ${maxBytes} bytes`),
    );
    if (bytes.byteLength === 0) throw new LengthMismatchError('empty chunk');
    await this.put(sha256, bytes);
    return bytes.byteLength;
  }

  /** One column of a chunk's row (undefined: no such chunk). */
  private column<C extends 'bytes' | 'size'>(sha256: string, column: C) {
    assertChunkName(sha256);
    return this.db.selectFrom('chunks').select(column).where('sha256', '=', sha256).executeTakeFirst();
  }

  async get(sha256: string): Promise<Uint8Array | null> {
    const row = await this.column(sha256, 'bytes');
    if (!row) return null;
    return new Uint8Array(row.bytes.buffer, row.bytes.byteOffset, row.bytes.byteLength);
  }

  stream(sha256: string, start: number, end: number): Readable {
    assertChunkName(sha256);
    const db = this.db;
    // Slices with substring(): a stored chunk is incompressible model bytes, kept uncompressed by
    // TOAST, so PostgreSQL reads only the slice's pages and the server holds one slice at a time.
    async function* slices() {
      for (let at = start; at <= end; at += PG_SLICE_BYTES) {
        const length = Math.min(PG_SLICE_BYTES, end - at + 1);
        const row = await db
          .selectFrom('chunks')
          .select(sql<Buffer>`substring(bytes from ${at + 1} for ${length})`.as('part'))
          .where('sha256', '=', sha256)
          .executeTakeFirst();
        if (!row) throw new Error(`chunk ${sha256} disappeared while it was read`);
        yield row.part;
      }
    }
    return Readable.from(slices(), { objectMode: false });
  }

  async size(sha256: string): Promise<number | null> {
    const row = await this.column(sha256, 'size');
    return row ? Number(row.size) : null;
  }

  async missing(hashes: string[]): Promise<string[]> {
    for (const hash of hashes) assertChunkName(hash);
    if (hashes.length === 0) return [];
    // One array parameter, not IN (...): a file may have 65,536 chunks, past PostgreSQL's
    // 65,535 bind parameters per statement.
    const stored = await this.db
      .selectFrom('chunks')
      .select('sha256')
      .where(sql<boolean>`sha256 = any(${hashes}::text[])`)
      .execute();
    const have = new Set(stored.map((r) => r.sha256));
    return hashes.filter((hash) => !have.has(hash));
  }

  close(): Promise<void> {
    return this.onClose();
  }
}
