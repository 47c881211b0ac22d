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

/**
 * Flips one byte of a stored chunk behind the store's back (a bad disk, another script on the
 * origin), written back as the store writes it.
 */
export async function rotStoredChunk(databaseName: string, sha256: string, at = 0): Promise<void> {
  const db = await openDB(databaseName);
  try {
    const record = (await db.get('chunks', sha256)) as { size: number; bytes: Uint8Array } | undefined;
    if (!record) throw new Error(`chunk ${sha256} is not stored in ${databaseName}`);
    record.bytes[at]! ^= 0xff;
    await db.put('chunks', record, sha256);
  } finally {
    db.close();
  }
}
