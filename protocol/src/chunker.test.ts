import { describe, expect, it } from 'vitest';
import { CHUNK_MAX, CHUNK_MIN, chunkBoundaries, describeFile } from './chunker.ts';

/** Deterministic pseudo-random bytes (xorshift32), so the test is the same in every run. */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe('content-defined chunking', () => {
  const data = pseudoRandomBytes(6 * 1024 * 1024, 42);

  it('tiles the input with chunks between the minimum and maximum size', () => {
    const cuts = chunkBoundaries(data);
    let offset = 0;
    for (const [start, length] of cuts) {
      expect(start).toBe(offset);
      expect(length).toBeLessThanOrEqual(CHUNK_MAX);
      offset += length;
    }
    expect(offset).toBe(data.length);
    for (const [, length] of cuts.slice(0, -1)) expect(length).toBeGreaterThanOrEqual(CHUNK_MIN);
    expect(cuts.length).toBeGreaterThan(6); // about 256 KiB on average, so well over one per MiB
  });

  it('keeps later chunks when bytes are inserted near the start', async () => {
    const edited = new Uint8Array(data.length + 1000);
    edited.set(data.subarray(0, 100_000));
    edited.set(pseudoRandomBytes(1000, 7), 100_000);
    edited.set(data.subarray(100_000), 101_000);
    const before = await describeFile('a', data);
    const after = await describeFile('a', edited);
    const known = new Set(before.chunks.map((c) => c.sha256));
    const reused = after.chunks.filter((c) => known.has(c.sha256));
    // Only the chunk(s) around the insertion change; all the rest are shared.
    expect(reused.length).toBeGreaterThanOrEqual(after.chunks.length - 2);
  });

  it('describes a file by its hash, size and chunks', async () => {
    const small = pseudoRandomBytes(1000, 3);
    const entry = await describeFile('model.onnx', small);
    expect(entry.size).toBe(1000);
    expect(entry.chunks).toEqual([{ sha256: entry.sha256, size: 1000 }]);
  });
});
