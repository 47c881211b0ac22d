// Test fixtures shared by the store and download tests (Node and Chromium): real signed releases
// over pseudo-random bytes, chunked with the protocol's own FastCDC.
import {
  describeFile,
  generateSigningKey,
  type Release,
  type SignedRelease,
  type SigningKeyPair,
  signRelease,
} from '@edgeship/protocol';

let publisher: Promise<SigningKeyPair> | undefined;

/** Deterministic bytes (mulberry32), so a failing case can be replayed. */
export function randomBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i += 4) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const word = (t ^ (t >>> 14)) >>> 0;
    for (let b = 0; b < 4 && i + b < length; b++) out[i + b] = (word >>> (b * 8)) & 0xff;
  }
  return out;
}

/** A signed release of `files` (path → bytes) with a minimal valid contract. */
export async function makeRelease(
  model: string,
  version: string,
  files: Record<string, Uint8Array>,
): Promise<SignedRelease> {
  const release: Release = {
    type: 'edgeship/release',
    model,
    version,
    format: 'onnx',
    files: await Promise.all(Object.entries(files).map(([path, bytes]) => describeFile(path, bytes))),
    quantization: { method: 'none' },
    inputs: [{ name: 'input', dtype: 'float32', shape: [1, 16] }],
    outputs: [{ name: 'output', dtype: 'float32', shape: [1, 2] }],
    preprocessing: [],
    postprocessing: [],
    monitoring: { features: [] },
    minRuntimeVersion: '0.1.0',
    createdAt: '2025-01-01T00:00:00.000Z',
  };
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
