import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, sha256Hex } from './bytes.ts';
import { CHUNK_MAX, CHUNK_MIN, chunkBoundaries, describeFile, streamChunks } from './chunker.ts';
import { seededBytes } from './seeded-random.ts';

describe('content-defined chunking', () => {
  const data = seededBytes(6 * 1024 * 1024, 42);

  it('cuts a fixed input where every earlier release was cut (boundaries are signed)', () => {
    // A change to the gear table, masks or sizes would move these and break chunk sharing with
    // every release already published; recorded from the first implementation.
    expect(chunkBoundaries(seededBytes(3_000_000, 42))).toEqual([
      [0, 289335],
      [289335, 285966],
      [575301, 307763],
      [883064, 283288],
      [1166352, 282480],
      [1448832, 541917],
      [1990749, 294205],
      [2284954, 434814],
      [2719768, 280232],
    ]);
  });

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
    edited.set(seededBytes(1000, 7), 100_000);
    edited.set(data.subarray(100_000), 101_000);
    const before = await describeFile('a', data);
    const after = await describeFile('a', edited);
    const known = new Set(before.chunks.map((c) => c.sha256));
    const reused = after.chunks.filter((c) => known.has(c.sha256));
    // Only the chunk(s) around the insertion change; all the rest are shared.
    expect(reused.length).toBeGreaterThanOrEqual(after.chunks.length - 2);
  });

  it('describes a file by its hash, size and chunks', async () => {
    const small = seededBytes(1000, 3);
    const entry = await describeFile('model.onnx', small);
    expect(entry.size).toBe(1000);
    expect(entry.chunks).toEqual([{ sha256: entry.sha256, size: 1000 }]);
  });

  it('cuts a stream, read in pieces of any size, exactly where it cuts the whole', async () => {
    const input = data.subarray(0, 3 * 1024 * 1024 + 12_345);
    const expected = chunkBoundaries(input).map(([, length]) => ({ length }));
    // Compared by hash: a deep equality over 3 MB, 20 times, takes minutes in a browser.
    const inputHash = await sha256Hex(input);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1000, max: 2 * CHUNK_MAX }), { minLength: 1, maxLength: 8 }),
        async (sizes) => {
          async function* pieces() {
            for (let offset = 0, i = 0; offset < input.length; i++) {
              const size = sizes[i % sizes.length]!;
              yield input.slice(offset, offset + size);
              offset += size;
            }
          }
          const got: Uint8Array[] = [];
          for await (const chunk of streamChunks(pieces())) got.push(chunk);
          // Same lengths and the same bytes in order: the same chunks.
          expect(got.map((c) => c.length)).toEqual(expected.map((c) => c.length));
          expect(await sha256Hex(concatBytes(got))).toBe(inputHash);
        },
      ),
      { numRuns: 20 },
    );
  });
});
