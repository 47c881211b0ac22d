import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { assertChunkHash, assertChunkName } from './chunk-hash.ts';
import type { BlobStore } from './types.ts';

/**
 * Chunks as files, `<dir>/<first two hex digits>/<sha256>` (the fan-out keeps directories small).
 * A chunk appears under its final name only complete and fsynced: it is written to a temporary
 * file in the same directory and renamed, which POSIX makes atomic within one file system.
 */
export class FsBlobStore implements BlobStore {
  constructor(private readonly dir: string) {}

  async put(sha256: string, bytes: Uint8Array): Promise<void> {
    assertChunkHash(sha256, bytes);
    const target = this.pathOf(sha256);
    if ((await sizeOf(target)) !== null) return;
    const folder = join(target, '..');
    await mkdir(folder, { recursive: true });
    // Dot-prefixed and never a valid hash name, so a crash leaves litter that nothing reads.
    const temp = join(folder, `.${sha256}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const file = await open(temp, 'wx');
      try {
        await file.writeFile(bytes);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, target);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
    await syncDirectory(folder);
  }

  async get(sha256: string): Promise<Uint8Array | null> {
    assertChunkName(sha256);
    try {
      const buffer = await readFile(this.pathOf(sha256));
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  stream(sha256: string, start: number, end: number): Readable {
    assertChunkName(sha256);
    // Chunks are immutable and never rewritten in place, so size and bytes cannot disagree.
    return createReadStream(this.pathOf(sha256), { start, end, highWaterMark: 256 * 1024 });
  }

  async size(sha256: string): Promise<number | null> {
    assertChunkName(sha256);
    return sizeOf(this.pathOf(sha256));
  }

  async missing(hashes: string[]): Promise<string[]> {
    for (const hash of hashes) assertChunkName(hash);
    const sizes = await Promise.all(hashes.map((hash) => sizeOf(this.pathOf(hash))));
    return hashes.filter((_, i) => sizes[i] === null);
  }

  async close(): Promise<void> {}

  private pathOf(sha256: string): string {
    return join(this.dir, sha256.slice(0, 2), sha256);
  }
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
}

/** Makes the rename itself durable: the new directory entry survives a power loss too. */
async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

function isMissing(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ENOENT';
}
