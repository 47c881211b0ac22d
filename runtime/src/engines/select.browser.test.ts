// Autotune in real Chromium and Firefox ESR on the real Silero VAD: each candidate is timed in its
// own nested worker (ORT fixes its thread count per worker), the fastest is loaded in this page.
// Timings are printed, never asserted: which candidate wins depends on the machine.
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
import { sileroFrames } from '../../test-fixtures/silero-input.ts';
import { describeConfig, type Engine, type EngineConfig, NoBackendError, sameConfig } from './engine.ts';
import { configureOrt, createOnnxEngine, ortThreads } from './onnx-engine.ts';
import { createOnnxProbe } from './probe.ts';
import { candidateConfigs, type DeviceEnv, selectEngine } from './select.ts';
import { sampleInputs } from './tensor.ts';

const env: DeviceEnv = { crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency };
/** A made-up device: cross-origin isolated with 8 cores, but for `fields`. */
const device = (fields: Partial<DeviceEnv>): DeviceEnv => ({
  crossOriginIsolated: true,
  hardwareConcurrency: 8,
  ...fields,
});
let model: Uint8Array;
const engines: Engine[] = [];

/** Loads a config in this page, as the runtime's worker does. */
function load(config: EngineConfig): Promise<Engine> {
  configureOrt({ wasmPaths: WASM_PATHS, threads: config.threads });
  return createOnnxEngine(model, config).then((engine) => {
    engines.push(engine);
    return engine;
  });
}

/** The chosen engine still computes Silero: frame 0 of the reference sequence. */
async function expectSilero(engine: Engine): Promise<void> {
  const outputs = await engine.run(sileroFeeds(sileroFrames()[0]!, new Float32Array(256)));
  expect(maxAbsDiff([outputs.output!.data[0] as number], [REFERENCE.outputs[0]!])).toBeLessThan(1e-4);
}

beforeAll(async () => {
  model = await sileroModel();
});

afterAll(async () => {
  for (const engine of engines.splice(0)) await engine.dispose();
});

describe('candidateConfigs', () => {
  it('offers WebGPU (where the browser has it), threaded WASM and single-threaded WASM on this page', async () => {
    // The test server sends COOP/COEP and Chromium runs WebGPU on SwiftShader (vitest.config.ts);
    // Firefox ESR has no WebGPU, and says so with a typed reason.
    expect(crossOriginIsolated).toBe(true);
    const { candidates, fallbacks } = await candidateConfigs('onnx', env);
    const threads = Math.min(4, Math.max(2, Math.ceil(navigator.hardwareConcurrency / 2)));
    expect(candidates).toEqual([
      ...(HAS.webgpu ? [{ backend: 'webgpu', threads }] : []),
      { backend: 'wasm', threads },
      { backend: 'wasm', threads: 1 },
    ]);
    expect(fallbacks).toEqual(
      HAS.webgpu
        ? []
        : [
            {
              config: { backend: 'webgpu' },
              code: 'no-webgpu',
              reason: 'no WebGPU: navigator.gpu is missing',
            },
          ],
    );
  });

  it('says why WebGPU and WASM threads are ruled out, with typed codes', async () => {
    const noAdapter = { requestAdapter: async () => null };
    const plain = await candidateConfigs('onnx', device({ crossOriginIsolated: false, gpu: noAdapter }));
    expect(plain.candidates).toEqual([{ backend: 'wasm', threads: 1 }]);
    expect(plain.fallbacks.map((f) => [describeConfig(f.config), f.code])).toEqual([
      ['webgpu', 'no-webgpu'],
      ['wasm×4', 'not-isolated'],
    ]);
    expect(plain.fallbacks[0]!.reason).toBe('no WebGPU adapter: requestAdapter returned null');

    const oneCore = await candidateConfigs('onnx', device({ hardwareConcurrency: 1, gpu: null }));
    expect(oneCore.fallbacks.map((f) => f.code)).toEqual(['no-webgpu', 'single-core']);
    expect(oneCore.fallbacks[0]!.reason).toBe('no WebGPU: navigator.gpu is missing');

    // tfjs: no adapter rules out its WebGPU backend; no served WASM files rule out its WASM one.
    const tfjs = await candidateConfigs('tfjs', device({ gpu: noAdapter }));
    expect(tfjs.candidates.map((c) => c.backend)).toEqual(['webgl', 'cpu']);
    expect(tfjs.fallbacks.map((f) => [f.config.backend, f.code])).toEqual([
      ['webgpu', 'no-webgpu'],
      ['wasm', 'not-available'],
    ]);
    const tfjsAll = await candidateConfigs('tfjs', device({ tfjsWasm: true }));
    expect(tfjsAll.candidates.map((c) => c.backend)).toEqual([
      ...(HAS.webgpu ? ['webgpu'] : []),
      'webgl',
      'wasm',
      'cpu',
    ]);
  });
});

describe('selectEngine on Silero VAD', () => {
  const sample = sampleInputs(SILERO_TENSORS.inputs);

  it('times every candidate in its own worker and keeps the fastest', async () => {
    expect(ortThreads()).toBeUndefined(); // nothing has started ORT in this page yet
    const { candidates } = await candidateConfigs('onnx', env);
    const selection = await selectEngine({
      format: 'onnx',
      load,
      candidates,
      sample,
      warmupRuns: 5,
      trial: createOnnxProbe({
        model,
        wasmPaths: WASM_PATHS,
        // The runtime's worker script, as Vite serves it to a worker (the query makes Vitest
        // transform it for a worker realm, as it does for the runtime's own worker).
        workerUrl: new URL('../worker/worker.ts?worker_file&type=module', import.meta.url),
      }),
    });
    console.log(
      `autotune: ${selection.trials.map((t) => `${describeConfig(t.config)} ${t.medianMs?.toFixed(2) ?? t.error} ms`).join(', ')} → ${describeConfig(selection.chosen)}`,
    );
    // Every candidate was measured, each with a median or the reason it could not run.
    expect(selection.trials.map((t) => t.config)).toEqual(candidates);
    for (const trial of selection.trials) {
      expect(trial.error).toBeUndefined();
      expect(trial.medianMs).toBeGreaterThan(0);
      expect(Number.isFinite(trial.medianMs)).toBe(true);
    }
    // The winner is a candidate, it is the smallest median, and it is what got loaded here.
    expect(candidates.some((c) => sameConfig(c, selection.chosen))).toBe(true);
    const fastest = [...selection.trials].sort((a, b) => a.medianMs! - b.medianMs!)[0]!;
    expect(selection.chosen).toEqual(fastest.config);
    expect(selection.engine.config).toEqual(selection.chosen);
    expect(selection.fallbacks).toEqual([]);
    expect(ortThreads()).toBe(selection.chosen.threads);
    await expectSilero(selection.engine);
  });

  it('honours an overridden backend even when another was faster', async () => {
    // ORT now runs in this page: only its thread count can load here (see candidateConfigs).
    const { candidates, fallbacks } = await candidateConfigs('onnx', { ...env, ortThreads: ortThreads() });
    expect(fallbacks.map((f) => f.code)).toEqual([...(HAS.webgpu ? [] : ['no-webgpu']), 'threads-fixed']);
    // Without WebGPU, preferring it is the next test's fallback.
    for (const preferred of HAS.webgpu ? (['webgpu', 'wasm'] as const) : (['wasm'] as const)) {
      const selection = await selectEngine({ format: 'onnx', load, candidates, sample, preferred });
      expect(selection.chosen.backend).toBe(preferred);
      expect(selection.trials.every((t) => t.config.backend === preferred)).toBe(true);
      expect(selection.fallbacks).toEqual([]);
      await expectSilero(selection.engine);
    }
  });

  it('falls back with a typed reason when the forced backend is unavailable', async () => {
    const { candidates, fallbacks } = await candidateConfigs('onnx', {
      ...env,
      gpu: null,
      ortThreads: ortThreads(),
    });
    const selection = await selectEngine({ format: 'onnx', load, candidates, sample, preferred: 'webgpu' });
    expect(selection.chosen).toEqual({ backend: 'wasm', threads: ortThreads() });
    const reasons = [...fallbacks, ...selection.fallbacks].map((f) => [f.config.backend, f.code]);
    expect(reasons).toContainEqual(['webgpu', 'no-webgpu']);
    expect(reasons).toContainEqual(['webgpu', 'not-available']);
    await expectSilero(selection.engine);
  });

  it('uses a remembered config without trials, and re-selects when it no longer loads', async () => {
    const threads = ortThreads();
    const candidates: EngineConfig[] = [{ backend: 'wasm', threads }];
    const remembered = await selectEngine({
      format: 'onnx',
      load,
      candidates,
      sample,
      remembered: candidates[0],
    });
    expect(remembered.trials).toEqual([]);
    expect(remembered.chosen).toEqual(candidates[0]);

    const stale = await selectEngine({
      format: 'onnx',
      load,
      candidates,
      sample,
      remembered: { backend: 'webgl' },
    });
    expect(stale.chosen).toEqual(candidates[0]);
    expect(stale.fallbacks.map((f) => [f.config.backend, f.code])).toEqual([['webgl', 'remembered-failed']]);
    expect(stale.fallbacks[0]!.reason).toMatch(/onnxruntime-web runs on webgpu or wasm, not webgl/);
  });

  it("throws E_NO_BACKEND listing every candidate's reason when none can run the model", async () => {
    const garbage = new Uint8Array(2048).fill(7);
    const failure = await selectEngine({
      format: 'onnx',
      load: (config) => createOnnxEngine(garbage, config),
      candidates: [{ backend: 'wasm', threads: ortThreads() }, { backend: 'webgl' }],
      sample,
    }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(NoBackendError);
    expect((failure as NoBackendError).code).toBe('E_NO_BACKEND');
    expect((failure as NoBackendError).reasons.map((r) => r.code)).toEqual([
      'session-failed',
      'not-available',
    ]);
  });
});
