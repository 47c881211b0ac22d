// The project's own tone classifier (demo-pwa/models/tone, trained by train.ts with tfjs in Node)
// through tfjs-engine in real Chromium and Firefox ESR, on every tfjs backend the browser offers:
// CPU and WASM in both, WebGL and WebGPU on Chromium's SwiftShader (headless Firefox has neither).
import { fromFloat16Array, InputError, toFloat16Array } from '@edgeship/protocol';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRng,
  makeToneExample,
  makeToneMix,
  TONE_SAMPLES,
} from '../../../demo-pwa/models/tone/generate.ts';
import reference from '../../../demo-pwa/models/tone/reference.json';
import { HAS, maxAbsDiff, toneFiles } from '../../test-fixtures/browser-fixtures.ts';
import { type Backend, BackendUnavailableError, type Engine, NoBackendError } from './engine.ts';
import { runWithContract, type TensorContract } from './pipeline.ts';
import { candidateConfigs, selectEngine } from './select.ts';
import { sampleInputs } from './tensor.ts';
import { createTfjsEngine, type TfjsFiles } from './tfjs-engine.ts';

/** What a tone release declares (see demo-pwa/publish): a batch of 1024-sample frames in [-1, 1]. */
const TONE: TensorContract = {
  inputs: [{ name: 'audio', dtype: 'float32', shape: ['batch', TONE_SAMPLES], range: { min: -1, max: 1 } }],
  preprocessing: [],
  postprocessing: [],
};

// CPU is the same float32 JS kernels as training in Node: only summation order may differ.
// WebGL computes in float32 textures on SwiftShader, whose exp/reductions differ in the last bits;
// 1e-4 on probabilities is still far inside any decision margin.
// WASM (XNNPACK) and WebGPU (SwiftShader) are float32 too, with their own summation orders.
const TOLERANCE: Record<string, number> = { cpu: 1e-5, webgl: 1e-4, wasm: 1e-4, webgpu: 1e-4 };

/** tfjs-backend-wasm's files, served from this origin as an app would serve them. */
const TFJS_WASM_PATHS = '/node_modules/@tensorflow/tfjs-backend-wasm/dist/';

/** Every reference input (seeded examples, then the ambiguous mixes) as one batch. */
function referenceBatch(): { audio: Float32Array; expected: number[][] } {
  const inputs = [
    ...reference.examples.map((e) => makeToneExample(createRng(e.seed)).audio),
    ...reference.mixes.map((m) => makeToneMix(m.amplitudes as [number, number, number])),
  ];
  const audio = new Float32Array(inputs.length * TONE_SAMPLES);
  for (const [i, frame] of inputs.entries()) audio.set(frame, i * TONE_SAMPLES);
  return { audio, expected: [...reference.examples, ...reference.mixes].map((e) => e.probabilities) };
}

let files: TfjsFiles;
const engines: Engine[] = [];

beforeAll(async () => {
  files = await toneFiles();
});

afterAll(async () => {
  for (const engine of engines.splice(0)) await engine.dispose();
});

/** The tfjs backends this browser has, and how tfjs-engine refuses the others. */
const OFFERED: Backend[] = [
  'cpu',
  'wasm',
  ...(HAS.webgl ? ['webgl' as const] : []),
  ...(HAS.webgpu ? ['webgpu' as const] : []),
];
const REFUSED: Array<[Backend, string, RegExp]> = [
  ...(HAS.webgl
    ? []
    : [['webgl', 'session-failed', /^webgl: tfjs could not initialise the backend$/] as const]),
  ...(HAS.webgpu ? [] : [['webgpu', 'no-webgpu', /^webgpu: no WebGPU: navigator.gpu is missing$/] as const]),
] as Array<[Backend, string, RegExp]>;

it('loads on every backend this browser offers, and refuses the others with a typed reason', async () => {
  expect([...OFFERED, ...REFUSED.map(([backend]) => backend)].sort()).toEqual([
    'cpu',
    'wasm',
    'webgl',
    'webgpu',
  ]);
  for (const [backend, fallback, message] of REFUSED) {
    const failure = await createTfjsEngine(files, { backend }).catch((e: unknown) => e);
    expect(failure, backend).toBeInstanceOf(BackendUnavailableError);
    expect((failure as BackendUnavailableError).fallback).toBe(fallback);
    expect((failure as Error).message).toMatch(message);
  }
});

describe.each<Backend>(OFFERED)('tone classifier on tfjs %s', (backend) => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await createTfjsEngine(files, { backend }, { wasmPaths: TFJS_WASM_PATHS });
    engines.push(engine);
  });

  it('gives reference.json outputs on every reference input, batched', async () => {
    expect(engine.inputNames).toEqual(['audio']);
    expect(engine.outputNames).toEqual(['probabilities']);
    const { audio, expected } = referenceBatch();
    const outputs = await runWithContract(engine, TONE, {
      audio: { data: audio, dims: [expected.length, TONE_SAMPLES] },
    });
    const probabilities = outputs.probabilities!;
    expect(probabilities.dims).toEqual([expected.length, 3]);
    const diff = maxAbsDiff(probabilities.data as Float32Array, expected.flat());
    console.log(`tone on ${backend} (${tf.getBackend()}): max |Δp| vs reference ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(TOLERANCE[backend]!);
    // The seeded examples are classified as labelled (held-out accuracy is in reference.json).
    reference.examples.forEach((example, i) => {
      const row = Array.from(probabilities.data.slice(i * 3, i * 3 + 3) as Float32Array);
      expect(row.indexOf(Math.max(...row))).toBe(example.label);
    });
  });

  it('gives the same answer one frame at a time as in a batch', async () => {
    const { audio, expected } = referenceBatch();
    const last = expected.length - 1;
    const single = await engine.run({
      audio: { data: audio.slice(last * TONE_SAMPLES), dims: [1, TONE_SAMPLES] },
    });
    expect(maxAbsDiff(single.probabilities!.data as Float32Array, expected[last]!)).toBeLessThan(
      TOLERANCE[backend]!,
    );
  });

  it('refuses bad inputs with E_INPUT before any inference', async () => {
    for (const [inputs, message] of [
      [{ audio: { data: new Float32Array(512), dims: [1, 512] } }, /"audio" dim 1 must be 1024, got 512/],
      [
        { audio: { data: new Int32Array(TONE_SAMPLES), dims: [1, TONE_SAMPLES] } },
        /expected a Float32Array, got Int32Array/,
      ],
      [
        { audio: { data: new Float32Array(TONE_SAMPLES).fill(-2), dims: [1, TONE_SAMPLES] } },
        /outside \[-1, 1\]/,
      ],
    ] as const) {
      const failure = await runWithContract(engine, TONE, inputs as never).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(InputError);
      expect((failure as InputError).code).toBe('E_INPUT');
      expect((failure as Error).message).toMatch(message);
    }
  });
});

describe('float16 inputs on tfjs', () => {
  it('decode to the same float32 values the protocol gives, so the model answers alike', async () => {
    const engine = await createTfjsEngine(files, { backend: 'cpu' });
    engines.push(engine);
    const { audio, expected } = referenceBatch();
    const dims = [expected.length, TONE_SAMPLES];
    const halves = toFloat16Array(audio);
    const fromHalves = await engine.run({ audio: { data: halves, dims } });
    const fromFloats = await engine.run({ audio: { data: fromFloat16Array(halves), dims } });
    // The same float32 tensor on the same CPU kernels: bit for bit the same probabilities.
    expect(fromHalves.probabilities!.data).toEqual(fromFloats.probabilities!.data);
    // Rounding the audio to halves moves no probability far from the reference.
    expect(maxAbsDiff(fromHalves.probabilities!.data as Float32Array, expected.flat())).toBeLessThan(0.01);
  });
});

describe('tfjs backend selection', () => {
  it('times every tfjs backend and keeps the fastest, which still gives the reference outputs', async () => {
    const { candidates, fallbacks } = await candidateConfigs('tfjs', {
      crossOriginIsolated,
      hardwareConcurrency: navigator.hardwareConcurrency,
      tfjsWasm: true,
    });
    const selection = await selectEngine({
      format: 'tfjs',
      load: (config) => createTfjsEngine(files, config, { wasmPaths: TFJS_WASM_PATHS }),
      candidates,
      sample: sampleInputs(TONE.inputs),
    });
    engines.push(selection.engine);
    console.log(
      `tfjs autotune: ${selection.trials.map((t) => `${t.config.backend} ${t.medianMs?.toFixed(2) ?? t.error} ms`).join(', ')} → ${selection.chosen.backend}`,
    );
    // WebGL is always a candidate (no cheap probe): where it cannot start, its trial says why.
    expect(selection.trials.map((t) => t.config.backend)).toEqual([
      ...(HAS.webgpu ? ['webgpu'] : []),
      'webgl',
      'wasm',
      'cpu',
    ]);
    for (const trial of selection.trials) {
      if (HAS.webgl || trial.config.backend !== 'webgl') expect(trial.medianMs).toBeGreaterThan(0);
      else expect(trial.error).toBe('webgl: tfjs could not initialise the backend');
    }
    expect(selection.fallbacks.map((f) => [f.config.backend, f.code])).toEqual(
      HAS.webgl ? [] : [['webgl', 'session-failed']],
    );
    expect(candidates).toContainEqual(selection.chosen);
    expect(fallbacks.map((f) => [f.config.backend, f.code])).toEqual(
      HAS.webgpu ? [] : [['webgpu', 'no-webgpu']],
    );
    const { audio, expected } = referenceBatch();
    const outputs = await selection.engine.run({
      audio: { data: audio, dims: [expected.length, TONE_SAMPLES] },
    });
    expect(maxAbsDiff(outputs.probabilities!.data as Float32Array, expected.flat())).toBeLessThan(1e-4);
  });

  it('rejects weights that give non-finite outputs on every backend, with a typed reason each', async () => {
    // The same topology with every weight NaN: loads fine, cannot answer.
    const nan = new Float32Array(files.weights.byteLength / 4).fill(Number.NaN);
    const broken = { modelJson: files.modelJson, weights: new Uint8Array(nan.buffer) };
    // A GPU backend and the CPU one: WebGL where the browser has it, else WASM.
    const accelerated: Backend = HAS.webgl ? 'webgl' : 'wasm';
    const failure = await selectEngine({
      format: 'tfjs',
      load: (config) => createTfjsEngine(broken, config, { wasmPaths: TFJS_WASM_PATHS }),
      candidates: [{ backend: accelerated }, { backend: 'cpu' }],
      sample: sampleInputs(TONE.inputs),
    }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(NoBackendError);
    expect((failure as NoBackendError).reasons.map((r) => [r.config.backend, r.code])).toEqual([
      [accelerated, 'non-finite'],
      ['cpu', 'non-finite'],
    ]);
  });

  it('leaves WASM out, with the reason, when the app serves no tfjs WASM files', async () => {
    const { candidates, fallbacks } = await candidateConfigs('tfjs', {
      crossOriginIsolated,
      hardwareConcurrency: navigator.hardwareConcurrency,
    });
    expect(candidates.map((c) => c.backend)).not.toContain('wasm');
    expect(fallbacks).toEqual([
      ...(HAS.webgpu ? [] : [expect.objectContaining({ config: { backend: 'webgpu' }, code: 'no-webgpu' })]),
      expect.objectContaining({ config: { backend: 'wasm' }, code: 'not-available' }),
    ]);
  });
});
