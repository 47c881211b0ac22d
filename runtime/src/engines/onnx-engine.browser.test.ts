// Silero VAD v5 in onnxruntime-web, in real Chromium and Firefox ESR: WASM against
// onnxruntime-node's answers, WebGPU (Chromium's SwiftShader) against WASM, and bad inputs refused
// before any inference.
import { InputError, sha256Hex } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HAS,
  maxAbsDiff,
  SILERO_REFERENCE as REFERENCE,
  SILERO_TENSORS,
  sileroFeeds,
  sileroModel,
  WASM_PATHS,
} from '../../test-fixtures/browser-fixtures.ts';
import { framesBytes, sileroFrames } from '../../test-fixtures/silero-input.ts';
import { BackendUnavailableError, type Engine, type EngineConfig } from './engine.ts';
import { configureOrt, createOnnxEngine, ortThreads } from './onnx-engine.ts';
import { runWithContract } from './pipeline.ts';
import type { NamedTensors } from './tensor.ts';

// The bound for onnxruntime-web against onnxruntime-node.
const NODE_PARITY = 1e-4;

let model: Uint8Array;
const engines: Engine[] = [];

beforeAll(async () => {
  model = await sileroModel();
  // One thread in this page: ORT fixes its thread count at first use (select tests compare counts).
  configureOrt({ wasmPaths: WASM_PATHS, threads: 1 });
});

afterAll(async () => {
  for (const engine of engines.splice(0)) await engine.dispose();
});

async function open(config: EngineConfig): Promise<Engine> {
  const engine = await createOnnxEngine(model, config);
  engines.push(engine);
  return engine;
}

/** The whole reference sequence, with the state carried from frame to frame. */
async function runSequence(engine: Engine): Promise<{ outputs: number[]; finalState: Float32Array }> {
  let state: Float32Array = new Float32Array(256);
  const outputs: number[] = [];
  for (const frame of sileroFrames()) {
    const result = await engine.run(sileroFeeds(frame, state));
    expect(result.output!.dims).toEqual([1, 1]);
    expect(result.stateN!.dims).toEqual([2, 1, 128]);
    outputs.push(result.output!.data[0] as number);
    state = result.stateN!.data as Float32Array;
  }
  return { outputs, finalState: state };
}

describe('Silero VAD v5 on onnxruntime-web', () => {
  it('generates the same input sequence as the Node reference', async () => {
    expect(await sha256Hex(framesBytes(sileroFrames()))).toBe(REFERENCE.input.sha256);
  });

  it('WASM matches onnxruntime-node within 1e-4 on every frame and the final state', async () => {
    const engine = await open({ backend: 'wasm', threads: 1 });
    expect(engine.inputNames).toEqual(['input', 'state', 'sr']);
    expect(engine.outputNames).toEqual(['output', 'stateN']);
    const { outputs, finalState } = await runSequence(engine);
    const outputDiff = maxAbsDiff(outputs, REFERENCE.outputs);
    const stateDiff = maxAbsDiff(finalState, REFERENCE.finalState);
    console.log(
      `wasm vs onnxruntime-node: max |Δoutput| ${outputDiff.toExponential(2)}, max |Δstate| ${stateDiff.toExponential(2)}`,
    );
    expect(outputDiff).toBeLessThan(NODE_PARITY);
    expect(stateDiff).toBeLessThan(NODE_PARITY);
    expect(ortThreads()).toBe(1);
  });

  it('WebGPU gives the WASM outputs within tolerance where the browser has it, else is no-webgpu', async () => {
    if (!HAS.webgpu) {
      // Firefox ESR: the documented fallback, a typed reason and no session.
      expect('gpu' in navigator).toBe(false);
      const failure = await createOnnxEngine(model, { backend: 'webgpu', threads: 1 }).catch(
        (e: unknown) => e,
      );
      expect(failure).toBeInstanceOf(BackendUnavailableError);
      expect((failure as BackendUnavailableError).fallback).toBe('no-webgpu');
      expect((failure as Error).message).toBe('webgpu×1: no WebGPU: navigator.gpu is missing');
      return;
    }
    const gpu = await open({ backend: 'webgpu', threads: 1 });
    const wasm = await open({ backend: 'wasm', threads: 1 });
    expect(gpu.config.backend).toBe('webgpu');
    const onGpu = await runSequence(gpu);
    const onWasm = await runSequence(wasm);
    const outputDiff = maxAbsDiff(onGpu.outputs, onWasm.outputs);
    const stateDiff = maxAbsDiff(onGpu.finalState, onWasm.finalState);
    console.log(
      `webgpu vs wasm: max |Δoutput| ${outputDiff.toExponential(2)}, max |Δstate| ${stateDiff.toExponential(2)}`,
    );
    // Both run float32; WebGPU's kernels sum in another order (and SwiftShader's exp/tanh are not
    // WASM's), so they agree to a few float32 ulps per op, compounded over 24 recurrent steps.
    // The node-parity bound (1e-4) still holds, and is ~1000× below any decision-relevant change.
    expect(outputDiff).toBeLessThan(NODE_PARITY);
    expect(stateDiff).toBeLessThan(NODE_PARITY);
    expect(maxAbsDiff(onGpu.outputs, REFERENCE.outputs)).toBeLessThan(NODE_PARITY);
  });

  it("reports a model ORT cannot load as a failed session, with ORT's reason", async () => {
    const garbage = new Uint8Array(4096).map((_, i) => (i * 7919) & 0xff);
    const failure = await createOnnxEngine(garbage, { backend: 'wasm', threads: 1 }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(BackendUnavailableError);
    expect((failure as BackendUnavailableError).code).toBe('E_NO_BACKEND');
    expect((failure as BackendUnavailableError).fallback).toBe('session-failed');
    expect((failure as Error).message).toMatch(/^wasm×1: /);
  });

  it('refuses a thread count this page did not start ORT with, instead of silently ignoring it', async () => {
    const failure = await createOnnxEngine(model, { backend: 'wasm', threads: 2 }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(BackendUnavailableError);
    expect((failure as BackendUnavailableError).fallback).toBe('threads-fixed');
    expect(() => configureOrt({ wasmPaths: WASM_PATHS, threads: 2 })).toThrow(BackendUnavailableError);
  });
});

describe('input validation', () => {
  /** A real engine that counts the inferences it was asked for. */
  function counted(engine: Engine): Engine & { runs: number } {
    const wrapper = {
      runs: 0,
      config: engine.config,
      inputNames: engine.inputNames,
      outputNames: engine.outputNames,
      run(inputs: NamedTensors) {
        wrapper.runs++;
        return engine.run(inputs);
      },
      dispose: () => engine.dispose(),
    };
    return wrapper;
  }

  // One real WASM engine for all cases: the validation runs before it, so it needs no reset.
  let wasm: Engine;
  beforeAll(async () => {
    wasm = await open({ backend: 'wasm', threads: 1 });
  });

  const frame = () => new Float32Array(512).fill(0.1);
  const state = () => new Float32Array(256);

  it.each<[string, NamedTensors, RegExp]>([
    [
      'float64 audio',
      { ...sileroFeeds(frame(), state()), input: { data: new Float64Array(512) as never, dims: [1, 512] } },
      /"input" is float32: expected a Float32Array, got Float64Array/,
    ],
    [
      'an int32 sample rate for int64',
      { ...sileroFeeds(frame(), state()), sr: { data: new Int32Array([16_000]), dims: [] } },
      /"sr" is int64/,
    ],
    [
      'a 256-sample frame',
      { ...sileroFeeds(frame(), state()), input: { data: new Float32Array(256), dims: [1, 256] } },
      /"input" dim 1 must be 512, got 256/,
    ],
    [
      'a state of the wrong rank',
      { ...sileroFeeds(frame(), state()), state: { data: state(), dims: [2, 128] } },
      /"state" must have rank 3/,
    ],
    [
      'audio outside [-1, 1]',
      sileroFeeds(new Float32Array(512).fill(1.5), state()),
      /"input" value 1.5 at index 0 is outside \[-1, 1\]/,
    ],
    [
      'an 8 kHz sample rate',
      { ...sileroFeeds(frame(), state()), sr: { data: new BigInt64Array([8_000n]), dims: [] } },
      /"sr" value 8000/,
    ],
    [
      'a NaN in the state',
      sileroFeeds(frame(), new Float32Array(256).fill(Number.NaN)),
      /"state" has NaN at index 0/,
    ],
  ])('refuses %s with E_INPUT before any inference', async (_, inputs, message) => {
    const engine = counted(wasm);
    const failure = await runWithContract(engine, SILERO_TENSORS, inputs).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(InputError);
    expect((failure as InputError).code).toBe('E_INPUT');
    expect((failure as Error).message).toMatch(message);
    expect(engine.runs).toBe(0);
  });

  it('runs valid inputs through the same path, once', async () => {
    const engine = counted(wasm);
    const outputs = await runWithContract(engine, SILERO_TENSORS, sileroFeeds(sileroFrames()[0]!, state()));
    expect(engine.runs).toBe(1);
    expect(Math.abs((outputs.output!.data[0] as number) - REFERENCE.outputs[0]!)).toBeLessThan(NODE_PARITY);
  });

  it('would otherwise let ORT run out-of-range audio without complaint (why validation exists)', async () => {
    const engine = await open({ backend: 'wasm', threads: 1 });
    const outputs = await engine.run(sileroFeeds(new Float32Array(512).fill(1.5), state()));
    expect(Number.isFinite(outputs.output!.data[0] as number)).toBe(true);
  });
});
