// Test fixtures shared by the store and download tests (Node and Chromium): real signed releases
// over pseudo-random bytes, chunked with the protocol's own FastCDC.
import { generateSigningKey, type SignedRelease, type SigningKeyPair, signRelease } from '@edgeship/protocol';
import { openDB } from 'idb';
import { testRelease } from '../../../test/support/trust.ts';

let publisher: Promise<SigningKeyPair> | undefined;

/** A signed release of `files` (path → bytes) with a minimal valid contract. */
export async function makeRelease(
  model: string,
  version: string,
  files: Record<string, Uint8Array>,
): Promise<SignedRelease> {
  const release = await testRelease(files, {
    model,
    version,
    inputs: [{ name: 'input', dtype: 'float32', shape: [1, 16] }],
    outputs: [{ name: 'output', dtype: 'float32', shape: [1, 2] }],
    createdAt: '2025-01-01T00:00:00.000Z',
  });
  publisher ??= generateSigningKey();
  return signRelease(release, [await publisher]);
}

/** The bytes of each chunk of `files`, by hash: what a chunk server holds. */
export function chunkBytes(
  signed: SignedRelease,
  files: Record<string, Uint8Array>,
): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const file of signed.signed.files) {
    let offset = 0;
    for (const chunk of file.chunks) {
      out.set(chunk.sha256, files[file.path]!.subarray(offset, offset + chunk.size));
      offset += chunk.size;
    }
  }
  return out;
}

/** A chunk record's bytes: a Blob as the store writes them, or a Uint8Array as stores before 0.2 did. */
export async function storedChunkBytes(record: { bytes: Blob | Uint8Array }): Promise<Uint8Array> {
  return record.bytes instanceof Blob ? new Uint8Array(await record.bytes.arrayBuffer()) : record.bytes;
}

/**
 * Flips one byte of a stored chunk behind the store's back (a bad disk, another script on the
 * origin), written back in the store's own format (a Blob) unless `as` says otherwise.
 */
export async function rotStoredChunk(
  databaseName: string,
  sha256: string,
  opts: { at?: number; as?: 'blob' | 'bytes' } = {},
): Promise<void> {
  const db = await openDB(databaseName);
  try {
    const record = (await db.get('chunks', sha256)) as { size: number; bytes: Blob | Uint8Array } | undefined;
    if (!record) throw new Error(`chunk ${sha256} is not stored in ${databaseName}`);
    const bytes = (await storedChunkBytes(record)).slice();
    bytes[opts.at ?? 0]! ^= 0xff;
    await db.put(
      'chunks',
      { size: record.size, bytes: opts.as === 'bytes' ? bytes : new Blob([bytes]) },
      sha256,
    );
  } finally {
    db.close();
  }
}
