import { createHash } from 'node:crypto';
import type { FileEntry } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import { ArrivalHasher } from './arrival-hasher.ts';

/** A file of `parts` (each part's bytes named by its hash), as a release's file entry lists it. */
function fileOf(path: string, parts: Uint8Array[]): FileEntry {
  const hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  const whole = Buffer.concat(parts);
  return {
    path,
    size: whole.length,
    sha256: hex(whole),
    chunks: parts.map((p) => ({ sha256: hex(p), size: p.length })),
  } as FileEntry;
}

const part = (fill: number, size = 1000) => new Uint8Array(size).fill(fill);

describe('ArrivalHasher', () => {
  it('hashes a whole file from chunks that arrive out of order', async () => {
    const parts = [part(1), part(2), part(3), part(4)];
    const file = fileOf('m.onnx', parts);
    const arrival = await ArrivalHasher.create([file], 10_000);
    for (const i of [1, 3, 0, 2]) arrival.offer(file.chunks[i]!.sha256, parts[i]!);
    const partial = arrival.finish().get('m.onnx')!;
    expect(partial.nextChunk).toBe(4);
    expect(partial.hasher.hex()).toBe(file.sha256);
    // Chunks 1 and 3 waited for the ones before them.
    expect(arrival.peakHeldBytes).toBe(2000);
  });

  it('feeds a chunk listed twice, and shared by two files, to every place it appears', async () => {
    const a = part(7);
    const b = part(8);
    const first = fileOf('a', [a, b, a]);
    const second = fileOf('b', [b, a]);
    const arrival = await ArrivalHasher.create([first, second], 10_000);
    arrival.offer(first.chunks[1]!.sha256, b);
    arrival.offer(first.chunks[0]!.sha256, a);
    const partials = arrival.finish();
    expect(partials.get('a')!.nextChunk).toBe(3);
    expect(partials.get('a')!.hasher.hex()).toBe(first.sha256);
    expect(partials.get('b')!.hasher.hex()).toBe(second.sha256);
  });

  it('holds no more than its budget and stops where a chunk did not arrive', async () => {
    const parts = [part(1), part(2), part(3), part(4)];
    const file = fileOf('m', parts);
    const arrival = await ArrivalHasher.create([file], 1500);
    // Chunk 0 came from an earlier attempt (already stored): the hash cannot start on arrival.
    for (const i of [1, 2, 3]) arrival.offer(file.chunks[i]!.sha256, parts[i]!);
    expect(arrival.peakHeldBytes).toBeLessThanOrEqual(1500);
    const partial = arrival.finish().get('m')!;
    expect(partial.nextChunk).toBe(0);
    // The store finishes it from chunk 0 on; the same hasher takes the rest.
    for (const p of parts) partial.hasher.update(p);
    expect(partial.hasher.hex()).toBe(file.sha256);
  });
});
