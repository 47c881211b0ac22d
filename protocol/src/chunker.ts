import { concatBytes, sha256Hex } from './bytes.ts';
import type { ChunkRef, FileEntry } from './release.ts';
import { mulberry32Words } from './seeded-random.ts';

/**
 * Content-defined chunking (FastCDC, Xia et al. 2016, with normalized chunking): boundaries
 * follow the content, so bytes shared by two releases (an unchanged tensor) fall into the same
 * chunks and a device that has one release fetches only what the other adds. The boundaries
 * are part of what a publisher signs, so the parameters and gear table are protocol constants.
 */
export const CHUNK_MIN = 64 * 1024;
export const CHUNK_AVG = 256 * 1024;
export const CHUNK_MAX = 1024 * 1024;

// Top 20 bits before the average size (harder to cut), top 16 bits after (easier): the
// normalized chunking of FastCDC section 3.3, which narrows the size distribution.
const MASK_HARD = 0xfffff000;
const MASK_EASY = 0xffff0000;

/** The gear table: 256 pseudo-random 32-bit words from a fixed mulberry32 seed ("edge"). */
const GEAR = Uint32Array.from({ length: 256 }, mulberry32Words(0x6564_6765));

/** Length of the next chunk starting at `start`. */
function nextCut(bytes: Uint8Array, start: number): number {
  const remaining = bytes.length - start;
  if (remaining <= CHUNK_MIN) return remaining;
  const end = Math.min(remaining, CHUNK_MAX);
  const normal = Math.min(end, CHUNK_AVG);
  let hash = 0;
  let i = CHUNK_MIN;
  for (; i < normal; i++) {
    hash = ((hash << 1) + GEAR[bytes[start + i]!]!) >>> 0;
    if ((hash & MASK_HARD) === 0) return i + 1;
  }
  for (; i < end; i++) {
    hash = ((hash << 1) + GEAR[bytes[start + i]!]!) >>> 0;
    if ((hash & MASK_EASY) === 0) return i + 1;
  }
  return end;
}

/** Splits bytes into content-defined chunks: [offset, length] pairs that tile the input. */
export function chunkBoundaries(bytes: Uint8Array): Array<[offset: number, length: number]> {
  const out: Array<[number, number]> = [];
  for (let offset = 0; offset < bytes.length; ) {
    const length = nextCut(bytes, offset);
    out.push([offset, length]);
    offset += length;
  }
  return out;
}

/**
 * The chunks of a byte stream, cut exactly where chunkBoundaries cuts the whole: a cut depends on
 * at most CHUNK_MAX bytes from its start, so holding CHUNK_MAX bytes (plus one read) is enough. A
 * model is chunked and hashed as it is read, never held whole in memory.
 */
export async function* streamChunks(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  // Pieces are joined only once CHUNK_MAX bytes wait, and every join cuts at least CHUNK_MIN
  // bytes off, so small reads cost linear time, not a copy of the buffer each.
  let parts: Uint8Array[] = [];
  let buffered = 0;
  for await (const piece of source) {
    parts.push(piece);
    buffered += piece.length;
    if (buffered < CHUNK_MAX) continue;
    const pending = concatBytes(parts);
    let offset = 0;
    while (pending.length - offset >= CHUNK_MAX) {
      const length = nextCut(pending, offset);
      yield pending.slice(offset, offset + length);
      offset += length;
    }
    parts = [pending.subarray(offset)];
    buffered = pending.length - offset;
  }
  const rest = concatBytes(parts);
  for (let offset = 0; offset < rest.length; ) {
    const length = nextCut(rest, offset);
    yield rest.slice(offset, offset + length);
    offset += length;
  }
}

/** Describes one file as the release document carries it: whole-file hash plus its chunks. */
export async function describeFile(path: string, bytes: Uint8Array): Promise<FileEntry> {
  const chunks: ChunkRef[] = [];
  for (const [offset, length] of chunkBoundaries(bytes)) {
    chunks.push({ sha256: await sha256Hex(bytes.subarray(offset, offset + length)), size: length });
  }
  return { path, size: bytes.length, sha256: await sha256Hex(bytes), chunks };
}
