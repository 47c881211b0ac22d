// The handle API in real Chromium and Firefox ESR on the real Silero VAD: typed end to end by a
// schema (tsc checks this file), and a sequence call that carries the recurrent state the release
// signs (stateN → state) inside the worker and gives the same probabilities as frame-by-frame calls.
import { afterEach, describe, expect, it } from 'vitest';
import { serverWithVad, startRuntime, stopAll, uniqueName } from '../test-fixtures/runtime-harness.ts';
import type { ModelSchema } from './schema.ts';

const FRAME = 512;
const FRAMES = 48;

/** What the app knows about its models: names, the array each tensor travels in, the signed state pair. */
interface TestModels extends ModelSchema {
  vad: {
    inputs: { input: Float32Array; state: Float32Array; sr: BigInt64Array };
    outputs: { output: Float32Array; stateN: Float32Array };
    recurrent: { stateN: 'state' };
  };
}

afterEach(stopAll);

async function vadRuntime() {
  const server = await serverWithVad('handle');
  return startRuntime<TestModels>(server, { storagePrefix: uniqueName('handle') });
}

/** Speech-like then silent: a chirp with a few noisy frames, so the probabilities move. */
function clip(): Float32Array {
  const samples = new Float32Array(FRAMES * FRAME);
  for (let i = 0; i < samples.length; i++) {
    const t = i / 16_000;
    const voiced = i < samples.length * 0.6 ? 0.4 : 0.01;
    samples[i] =
      voiced * Math.sin(2 * Math.PI * (150 + 400 * t) * t) * (1 + 0.3 * Math.sin(2 * Math.PI * 4 * t));
  }
  return samples;
}

const sr = () => ({ data: new BigInt64Array([16_000n]), dims: [] });

describe('model handles', () => {
  it('runs a typed handle, and a sequence call gives the frame-by-frame probabilities in one round trip', async () => {
    const runtime = await vadRuntime();
    const vad = await runtime.load('vad');
    expect(vad.name).toBe('vad');
    expect(await vad.status()).toMatchObject({ active: 'vad@1.0.0', loaded: 'vad@1.0.0' });
    const samples = clip();

    // Frame by frame: one message each way per 32 ms frame, the state carried by the page.
    const byFrame: number[] = [];
    const frameByFrameStart = performance.now();
    let state: Float32Array = new Float32Array(2 * 128);
    for (let f = 0; f < FRAMES; f++) {
      const outputs = await vad.run({
        input: { data: samples.slice(f * FRAME, (f + 1) * FRAME), dims: [1, FRAME] },
        state: { data: state, dims: [2, 1, 128] },
        sr: sr(),
      });
      byFrame.push(outputs.output.data[0]!); // typed: Float32Array, no cast
      state = outputs.stateN.data;
    }
    const frameByFrameMs = performance.now() - frameByFrameStart;
    expect(Math.max(...byFrame) - Math.min(...byFrame)).toBeGreaterThan(0.1);

    // One sequence call: every frame, the state carried in the worker by the release's signed pair.
    const sequenceStart = performance.now();
    const whole = await vad.runSequence({
      steps: { input: { data: samples.slice(), dims: [FRAMES, 1, FRAME] } },
      inputs: { state: { data: new Float32Array(2 * 128), dims: [2, 1, 128] }, sr: sr() },
    });
    const sequenceMs = performance.now() - sequenceStart;
    // Reported, not asserted: timings belong to bench/, and this machine is shared.
    console.log(
      `${FRAMES} frames: frame by frame ${frameByFrameMs.toFixed(1)} ms, one sequence ${sequenceMs.toFixed(1)} ms`,
    );
    expect(whole.outputs.output.dims).toEqual([FRAMES, 1, 1]);
    expect(Array.from(whole.outputs.output.data)).toEqual(byFrame.map((p) => expect.closeTo(p, 6)));
    expect(whole.state.state.dims).toEqual([2, 1, 128]);
    expect(Array.from(whole.state.state.data)).toEqual(Array.from(state).map((v) => expect.closeTo(v, 5)));

    // Two batches, the second continuing from the state the first returned, by model name.
    const half = (FRAMES / 2) * FRAME;
    const first = await runtime.runSequence('vad', {
      steps: { input: { data: samples.slice(0, half), dims: [FRAMES / 2, 1, FRAME] } },
      inputs: { state: { data: new Float32Array(2 * 128), dims: [2, 1, 128] }, sr: sr() },
    });
    const second = await runtime.runSequence('vad', {
      steps: { input: { data: samples.slice(half), dims: [FRAMES / 2, 1, FRAME] } },
      inputs: { ...first.state, sr: sr() },
    });
    expect([...first.outputs.output.data, ...second.outputs.output.data]).toEqual(
      byFrame.map((p) => expect.closeTo(p, 6)),
    );
  }, 180_000); // a first load on a busy 2-core machine takes most of a minute

  it('rejects what the schema rejects at compile time in the worker too (E_INPUT)', async () => {
    const runtime = await vadRuntime();
    const vad = await runtime.load('vad');
    await expect(
      vad.run({
        // @ts-expect-error: the schema has no input named "audio"
        audio: { data: new Float32Array(FRAME), dims: [1, FRAME] },
        state: { data: new Float32Array(256), dims: [2, 1, 128] },
        sr: sr(),
      }),
    ).rejects.toMatchObject({ code: 'E_INPUT' });
    await expect(
      // @ts-expect-error: "input" is missing
      vad.run({ state: { data: new Float32Array(256), dims: [2, 1, 128] }, sr: sr() }),
    ).rejects.toMatchObject({ code: 'E_INPUT' });
    await expect(
      vad.run({
        // @ts-expect-error: sr is int64, so it travels in a BigInt64Array
        sr: { data: new Int32Array([16_000]), dims: [] },
        input: { data: new Float32Array(FRAME), dims: [1, FRAME] },
        state: { data: new Float32Array(256), dims: [2, 1, 128] },
      }),
    ).rejects.toMatchObject({ code: 'E_INPUT' });
    // @ts-expect-error: "tone" is not a model of this schema
    await expect(runtime.load('tone')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    const sequence = await vad.runSequence({
      steps: { input: { data: new Float32Array(2 * FRAME), dims: [2, 1, FRAME] } },
      inputs: { state: { data: new Float32Array(256), dims: [2, 1, 128] }, sr: sr() },
    });
    // @ts-expect-error: a carried output comes back as state, not as an output
    expect(sequence.outputs.stateN).toBeUndefined();
    expect(sequence.state.state.dims).toEqual([2, 1, 128]);
    // A caller's carry replaces the signed pairs: with none, stateN is an ordinary stacked output.
    const uncarried = await vad.runSequence({
      steps: { input: { data: new Float32Array(2 * FRAME), dims: [2, 1, FRAME] } },
      inputs: { state: { data: new Float32Array(256), dims: [2, 1, 128] }, sr: sr() },
      carry: {},
    });
    expect(uncarried.outputs.stateN.dims).toEqual([2, 2, 1, 128]);
    expect(uncarried.state).toEqual({});
    // A signed pair's input needs its first value in inputs (E_INPUT).
    await expect(
      vad.runSequence({
        steps: { input: { data: new Float32Array(FRAME), dims: [1, 1, FRAME] } },
        inputs: { sr: sr() },
      }),
    ).rejects.toMatchObject({ code: 'E_INPUT' });
  }, 180_000);
});
