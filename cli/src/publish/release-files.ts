import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { describeFile, type FileEntry, streamChunks } from '@edgeship/protocol';
import type { ChunkReader } from '@edgeship/update-server/admin-client';

/**
 * One file of a release: bytes the CLI made or must hold anyway (a quantized graph, tfjs shards),
 * or a file on disk that is chunked, hashed and uploaded as a stream (ONNX external data), so a
 * large model is never held whole in memory.
 */
export type ReleaseFile =
  | { path: string; size: number; bytes: Uint8Array }
  | { path: string; size: number; onDisk: string };

export const inMemory = (path: string, bytes: Uint8Array): ReleaseFile => ({
  path,
  size: bytes.length,
  bytes,
});

export function totalBytes(files: readonly ReleaseFile[]): number {
  return files.reduce((n, f) => n + f.size, 0);
}

/** The file's entry in the release: whole-file SHA-256 and content-defined chunks. */
export async function describeReleaseFile(file: ReleaseFile): Promise<FileEntry> {
  if ('bytes' in file) return describeFile(file.path, file.bytes);
  const whole = createHash('sha256');
  const chunks: FileEntry['chunks'] = [];
  let size = 0;
  // node:crypto hashes incrementally; crypto.subtle cannot. Same SHA-256, so the same entry.
  for await (const chunk of streamChunks(createReadStream(file.onDisk, { highWaterMark: 1 << 20 }))) {
    whole.update(chunk);
    chunks.push({ sha256: createHash('sha256').update(chunk).digest('hex'), size: chunk.length });
    size += chunk.length;
  }
  return { path: file.path, size, sha256: whole.digest('hex'), chunks };
}

/** Reads one chunk of a release file for the upload: from memory, or from disk at its offset. */
export function chunkReader(files: readonly ReleaseFile[]): ChunkReader {
  const byPath = new Map(files.map((f) => [f.path, f]));
  return async (path, offset, size) => {
    const file = byPath.get(path);
    if (!file) throw new Error(`no file ${path} in this release`);
    if ('bytes' in file) return file.bytes.subarray(offset, offset + size);
    const handle = await open(file.onDisk, 'r');
    try {
      const bytes = new Uint8Array(size);
      const { bytesRead } = await handle.read(bytes, 0, size, offset);
      if (bytesRead !== size) throw new Error(`${file.onDisk} changed while it was published`);
      return bytes;
    } finally {
      await handle.close();
    }
  };
}
