// The committed Silero fixture must be what make-silero-reference.ts makes today: same model,
// same input, same outputs. Otherwise the browser parity test would check against a stale answer.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { makeSileroReference, REFERENCE_FILE } from './make-silero-reference.ts';
import type { SileroReference } from './silero-input.ts';

// Far below the 1e-4 parity bound; it only absorbs a different CPU's SIMD kernels (AVX2 vs
// AVX-512 sum in another order), which the same onnxruntime-node build may pick on another machine.
const REGENERATION_TOLERANCE = 1e-6;

function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  expect(a.length).toBe(b.length);
  return a.reduce((max, v, i) => Math.max(max, Math.abs(v - b[i]!)), 0);
}

describe('silero-reference.json', () => {
  it('equals a fresh run of make-silero-reference.ts under onnxruntime-node', async () => {
    const committed = JSON.parse(await readFile(REFERENCE_FILE, 'utf8')) as SileroReference;
    const fresh = await makeSileroReference();
    expect(committed.model).toEqual(fresh.model);
    expect(committed.input).toEqual(fresh.input);
    expect(committed.generatedBy).toEqual(fresh.generatedBy);
    expect(committed.outputs).toHaveLength(24);
    expect(committed.finalState).toHaveLength(256);
    expect(maxAbsDiff(committed.outputs, fresh.outputs)).toBeLessThanOrEqual(REGENERATION_TOLERANCE);
    expect(maxAbsDiff(committed.finalState, fresh.finalState)).toBeLessThanOrEqual(REGENERATION_TOLERANCE);
  });

  it('covers both silence and speech-like frames, so parity is checked across the whole range', async () => {
    const { outputs } = JSON.parse(await readFile(REFERENCE_FILE, 'utf8')) as SileroReference;
    expect(Math.min(...outputs)).toBeLessThan(0.1);
    expect(Math.max(...outputs)).toBeGreaterThan(0.9);
  });
});
