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
 * origin): in its IndexedDB value, or else in the OPFS pack a worker's store wrote it to (every
 * place of it there), written back as the store writes it.
 */
export async function rotStoredChunk(databaseName: string, sha256: string, at = 0): Promise<void> {
  const db = await openDB(databaseName);
  try {
    const record = (await db.get('chunks', sha256)) as { size: number; bytes: Uint8Array } | undefined;
    if (record) {
      record.bytes[at]! ^= 0xff;
      await db.put('chunks', record, sha256);
      return;
    }
    const places = (await db.getAllFromIndex('places', 'bySha', sha256)) as Array<{
      file: string;
      offset: number;
    }>;
    if (places.length === 0) throw new Error(`chunk ${sha256} is not stored in ${databaseName}`);
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle(databaseName);
    for (const place of places) {
      const handle = await dir.getFileHandle(place.file);
      const position = place.offset + at;
      const byte = new Uint8Array(await (await handle.getFile()).slice(position, position + 1).arrayBuffer());
      byte[0]! ^= 0xff;
      const writable = await handle.createWritable({ keepExistingData: true });
      await writable.write({ type: 'write', position, data: byte });
      await writable.close();
    }
  } finally {
    db.close();
  }
}

/**
 * A stored chunk's bytes read behind the store's back, from its IndexedDB value or else from the
 * first OPFS pack place recorded for it; undefined when stored nowhere.
 */
export async function readStoredChunk(databaseName: string, sha256: string): Promise<Uint8Array | undefined> {
  const db = await openDB(databaseName);
  try {
    const record = (await db.get('chunks', sha256)) as { size: number; bytes: Uint8Array } | undefined;
    if (record) return record.bytes;
    const place = (await db.getFromIndex('places', 'bySha', sha256)) as
      | { file: string; offset: number; size: number }
      | undefined;
    if (!place) return undefined;
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle(databaseName);
    const file = await (await dir.getFileHandle(place.file)).getFile();
    return new Uint8Array(await file.slice(place.offset, place.offset + place.size).arrayBuffer());
  } finally {
    db.close();
  }
}
