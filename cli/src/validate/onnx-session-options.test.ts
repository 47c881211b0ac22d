// The int8 session option, checked where it matters: in onnxruntime's own profile of a run.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnxSessionOptions } from '@edgeship/protocol';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSileroV5, SILERO_CARRY, sileroTestClips } from '../../test-data/silero.ts';
import { quantizeOnnx } from '../quantize/quantize-onnx.ts';
import { compareOutputs } from './compare.ts';
import { loadSession, runSequence } from './run-sequence.ts';

let int8: Uint8Array;
let folder: string;

beforeAll(async () => {
  int8 = (await quantizeOnnx(readSileroV5(), { mode: 'int8' })).bytes;
  folder = await mkdtemp(join(tmpdir(), 'edgeship-ort-profile-'));
});
afterAll(() => rm(folder, { recursive: true, force: true }));

/** The op types onnxruntime executed for one frame, read from its profile. */
async function executedOps(
  options: ort.InferenceSession.SessionOptions,
  prefix: string,
): Promise<Set<string>> {
  const session = await ort.InferenceSession.create(int8, {
    ...options,
    enableProfiling: true,
    profileFilePrefix: join(folder, prefix),
  });
  const clip = sileroTestClips()[0]!;
  await runSequence(session, clip.frames.slice(0, 2), SILERO_CARRY);
  session.endProfiling();
  await session.release();
  const file = (await readdir(folder)).find((name) => name.startsWith(prefix));
  const events = JSON.parse(await readFile(join(folder, file!), 'utf8')) as Array<{
    cat: string;
    args?: { op_name?: string };
  }>;
  return new Set(events.filter((e) => e.cat === 'Node').map((e) => e.args?.op_name ?? ''));
}

describe('onnxSessionOptions for weight-only int8', () => {
  it('folds DequantizeLinear at load, where ORT by default runs it every frame', async () => {
    const byDefault = await executedOps({ graphOptimizationLevel: 'all' }, 'default');
    const asDevicesRunIt = await executedOps(onnxSessionOptions({ method: 'int8' }), 'folded');
    expect(byDefault.has('DequantizeLinear')).toBe(true);
    expect(asDevicesRunIt.has('DequantizeLinear')).toBe(false);
    expect(asDevicesRunIt.size).toBeGreaterThan(3); // the model still ran: Conv, LSTM, …
  });

  it('gives the numbers the unfolded graph gives', async () => {
    const folded = await loadSession(int8, { method: 'int8' });
    const unfolded = await loadSession(int8, { method: 'none' });
    for (const clip of sileroTestClips()) {
      const a = await runSequence(folded.session, clip.frames, SILERO_CARRY);
      const b = await runSequence(unfolded.session, clip.frames, SILERO_CARRY);
      expect(compareOutputs(a.outputs, b.outputs, ['output']).maxAbsDiff).toBeLessThan(1e-5);
    }
    await folded.session.release();
    await unfolded.session.release();
  });

  it('leaves float32 and float16 releases on ORT defaults', () => {
    expect(onnxSessionOptions({ method: 'none' })).toEqual({ graphOptimizationLevel: 'all' });
    expect(onnxSessionOptions({ method: 'float16' })).toEqual({ graphOptimizationLevel: 'all' });
  });
});
