// The benchmark page: bench/run.ts drives these functions through Playwright (window.bench).
// Every variant runs the same frames from the same bytes, one inference at a time.
import type { SignedRelease, TrustedRoot } from '@edgeship/protocol';
import { type Remote, transfer, wrap } from 'comlink';
import * as ort from 'onnxruntime-web';
import { createRuntime, type Runtime } from '../../runtime/src/client.ts';
import { downloadRelease } from '../../runtime/src/download/fetcher.ts';
import { ModelStore } from '../../runtime/src/store/model-store.ts';
import { abbaPairs } from './abba.ts';
import { bigBench } from './big-bench.ts';
import { type BlockingReport, startBlockingProbe } from './main-thread-probe.ts';
import type { OrtComlinkApi } from './ort-comlink-worker.ts';
import { RawOrtWorker } from './raw-worker-client.ts';
import { timedRuntimeStart } from './runtime-start.ts';
import { frame, STATE_SIZE } from './silero-frames.ts';
import { storageBench } from './storage-bench.ts';
import { loadRawTfjs, type TfjsModelFiles } from './tfjs-raw.ts';
import { RawTfjsWorker } from './tfjs-worker-client.ts';

export interface PageSetup {
  server: string;
  trustedRoot: TrustedRoot;
  wasmPaths: string;
  modelUrl: string;
}

export type InferenceKind =
  | 'runtime'
  | 'raw-worker'
  | 'raw-main'
  | 'comlink-worker'
  | 'tfjs-runtime'
  | 'tfjs-raw-worker'
  | 'tfjs-raw-main';

export interface InferenceRun {
  kind: InferenceKind;
  perFrameMs: number[];
  /** Wall time of each block of BLOCK consecutive frames, divided by BLOCK. */
  blockMeanMs: number[];
  totalMs: number;
  blocking: BlockingReport;
  lastSpeechProbability: number;
}

/** Frames per timed block: performance.now() ticks in 100 µs on a page that is not cross-origin
 * isolated, too coarse for one 0.5 ms frame, fine for twenty. */
const BLOCK = 20;

/** Silero's recurrent state per variant across inferenceBlock calls. */
const blockStates: Record<'runtime' | 'raw-worker', Float32Array> = {
  runtime: new Float32Array(STATE_SIZE),
  'raw-worker': new Float32Array(STATE_SIZE),
};

let setupConfig: PageSetup;
let modelBytes: Uint8Array;
let runtime: Runtime | undefined;
let rawWorker: RawOrtWorker | undefined;
let mainSession: ort.InferenceSession | undefined;
let comlinkWorker: Worker | undefined;
let comlinkOrt: Remote<OrtComlinkApi> | undefined;
let toneRuntime: Runtime | undefined;
let toneWorker: RawTfjsWorker | undefined;
let toneMain: ((audio: Float32Array) => Promise<Float32Array>) | undefined;

/** The tone model takes 1024 samples: two Silero frames side by side. Outputs: probabilities. */
function toneAudio(input: Float32Array): Float32Array {
  const audio = new Float32Array(1024);
  audio.set(input);
  audio.set(input, 512);
  return audio;
}

type Runner = (
  input: Float32Array,
  state: Float32Array,
) => Promise<{ output: Float32Array; stateN: Float32Array }>;

/** tfjs variants: no recurrent state; the state passed in is handed back unchanged. */
function toneRunner(run: (audio: Float32Array) => Promise<Float32Array>): Runner {
  return async (input, state) => ({ output: await run(toneAudio(input)), stateN: state });
}

function runtimeOptions(storagePrefix: string, checkOnLoad = false, backend: 'wasm' | 'cpu' = 'wasm') {
  return {
    server: setupConfig.server,
    app: 'demo-app',
    channel: 'stable',
    trustedRoot: setupConfig.trustedRoot,
    wasmPaths: setupConfig.wasmPaths,
    backend,
    telemetry: false,
    checkOnLoad,
    // Checked for before the first load: the model this runtime runs.
    models: [backend === 'cpu' ? 'tone' : 'vad'],
    storagePrefix,
  };
}

function configureMainOrt() {
  ort.env.wasm.wasmPaths = setupConfig.wasmPaths;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
}

async function mainRun(input: Float32Array, state: Float32Array) {
  const out = await mainSession!.run({
    input: new ort.Tensor('float32', input, [1, 512]),
    state: new ort.Tensor('float32', state, [2, 1, 128]),
    sr: new ort.Tensor('int64', BigInt64Array.of(16_000n), []),
  });
  return { output: out.output!.data as Float32Array, stateN: out.stateN!.data as Float32Array };
}

async function runtimeRun(input: Float32Array, state: Float32Array) {
  const out = await runtime!.run('vad', {
    input: { data: input, dims: [1, 512] },
    state: { data: state, dims: [2, 1, 128] },
    sr: { data: BigInt64Array.of(16_000n), dims: [] },
  });
  return { output: out.output!.data as Float32Array, stateN: out.stateN!.data as Float32Array };
}

function runnerOf(kind: InferenceKind): Runner {
  if (kind === 'tfjs-runtime')
    return toneRunner(async (audio) => {
      const out = await toneRuntime!.run('tone', { audio: { data: audio, dims: [1, 1024] } });
      return out.probabilities!.data as Float32Array;
    });
  if (kind === 'tfjs-raw-worker') return toneRunner((audio) => toneWorker!.run(audio));
  if (kind === 'tfjs-raw-main') return toneRunner((audio) => toneMain!(audio));
  if (kind === 'runtime') return runtimeRun;
  if (kind === 'raw-main') return mainRun;
  if (kind === 'comlink-worker')
    return (input: Float32Array, state: Float32Array) =>
      comlinkOrt!.run(transfer(input, [input.buffer]), transfer(state, [state.buffer]));
  return (input: Float32Array, state: Float32Array) => rawWorker!.run(input, state);
}

const bench = {
  ...storageBench,
  ...bigBench,

  async setup(config: PageSetup) {
    setupConfig = config;
    modelBytes = new Uint8Array(await (await fetch(config.modelUrl)).arrayBuffer());
    configureMainOrt();
    return {
      userAgent: navigator.userAgent,
      crossOriginIsolated: globalThis.crossOriginIsolated,
      bytes: modelBytes.length,
    };
  },

  /** Loads the three variants once (the runtime downloads into storagePrefix) and warms each up. */
  async prepareInference(storagePrefix: string, warmup: number) {
    runtime = await createRuntime(runtimeOptions(storagePrefix));
    const status = await (await runtime.load('vad')).status();
    rawWorker = new RawOrtWorker();
    await rawWorker.request({ type: 'load', wasmPaths: setupConfig.wasmPaths, bytes: modelBytes.slice() });
    mainSession = await ort.InferenceSession.create(modelBytes.slice(), {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    });
    comlinkWorker = new Worker(new URL('./ort-comlink-worker.ts', import.meta.url), { type: 'module' });
    comlinkOrt = wrap<OrtComlinkApi>(comlinkWorker);
    await comlinkOrt.load(setupConfig.wasmPaths, modelBytes.slice());
    for (const kind of ['runtime', 'raw-worker', 'raw-main', 'comlink-worker'] as const)
      await bench.inference(kind, warmup);
    return { backend: status.backend?.chosen ?? null };
  },

  async inference(kind: InferenceKind, frames: number): Promise<InferenceRun> {
    const run = runnerOf(kind);
    const inputs = Array.from({ length: frames }, (_, i) => frame(i));
    const perFrameMs: number[] = [];
    const blockMeanMs: number[] = [];
    let state: Float32Array = new Float32Array(STATE_SIZE);
    let last = 0;
    // Start from a timer task, not from inside Playwright's evaluate, so main-thread work shows
    // up as ordinary (long) tasks the way it would in an app.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const stop = startBlockingProbe();
    const started = performance.now();
    let blockStart = started;
    for (let i = 0; i < frames; i++) {
      const input = inputs[i]!; // transferred (detached) by the worker variants: used once
      const t0 = performance.now();
      const out = await run(input, state);
      perFrameMs.push(performance.now() - t0);
      state = out.stateN;
      last = out.output[0]!;
      if ((i + 1) % BLOCK === 0) {
        const now = performance.now();
        blockMeanMs.push((now - blockStart) / BLOCK);
        blockStart = now;
      }
    }
    const totalMs = performance.now() - started;
    return { kind, perFrameMs, blockMeanMs, totalMs, blocking: stop(), lastSpeechProbability: last };
  },

  /**
   * The runtime and raw ORT in a worker in alternating blocks of `block` frames (which goes first
   * swaps every pair: ABBA), so a load spike on the shared machine lands on both sides of a pair:
   * the per-pair difference is the overhead under the same conditions. Short blocks keep the two
   * halves of a pair close in time; the frames carry on across blocks.
   */
  async inferencePaired(pairs: number, block = BLOCK) {
    const states: Record<'runtime' | 'raw-worker', Float32Array> = {
      runtime: new Float32Array(STATE_SIZE),
      'raw-worker': new Float32Array(STATE_SIZE),
    };
    const runners = { runtime: runnerOf('runtime'), 'raw-worker': runnerOf('raw-worker') };
    const frameNo = { runtime: 0, 'raw-worker': 0 };
    const timed = async (kind: 'runtime' | 'raw-worker') => {
      const run = runners[kind];
      const inputs = Array.from({ length: block }, (_, i) => frame(frameNo[kind] + i));
      frameNo[kind] += block;
      const t0 = performance.now();
      for (const input of inputs) states[kind] = (await run(input, states[kind])).stateN;
      return (performance.now() - t0) / block;
    };
    await new Promise((resolve) => setTimeout(resolve, 0));
    const [runtimeMs, rawMs] = await abbaPairs(pairs, 'runtime', 'raw-worker', timed);
    return { runtimeMs, rawMs };
  },

  /** One block of `frames` frames of one variant (the CPU-time pairs: the runner reads /proc around it). */
  async inferenceBlock(kind: 'runtime' | 'raw-worker', frames: number, first: number) {
    const run = runnerOf(kind);
    const inputs = Array.from({ length: frames }, (_, i) => frame(first + i));
    let state = blockStates[kind];
    const t0 = performance.now();
    for (const input of inputs) state = (await run(input, state)).stateN;
    blockStates[kind] = state;
    return (performance.now() - t0) / frames;
  },

  /** The project's tfjs tone model on tfjs's CPU backend: runtime, raw worker, raw main thread. */
  async prepareTfjs(storagePrefix: string, warmup: number) {
    const files: TfjsModelFiles = {
      modelJson: await (await fetch('/models/tone/model.json')).text(),
      weights: new Uint8Array(await (await fetch('/models/tone/weights.bin')).arrayBuffer()),
    };
    toneRuntime = await createRuntime(runtimeOptions(storagePrefix, false, 'cpu'));
    const status = await (await toneRuntime.load('tone')).status();
    toneWorker = new RawTfjsWorker();
    await toneWorker.load(files, 'cpu');
    toneMain = await loadRawTfjs(files, 'cpu');
    for (const kind of ['tfjs-runtime', 'tfjs-raw-worker', 'tfjs-raw-main'] as const)
      await bench.inference(kind, warmup);
    return { backend: status.backend?.chosen ?? null };
  },

  async disposeInference() {
    await toneRuntime?.dispose();
    toneWorker?.terminate();
    await runtime?.dispose();
    rawWorker?.terminate();
    comlinkWorker?.terminate();
    await mainSession?.release();
    runtime = undefined;
    rawWorker = undefined;
    mainSession = undefined;
  },

  /** Downloads the production release into storagePrefix, so later loads come from IndexedDB. */
  async primeStore(storagePrefix: string) {
    const rt = await createRuntime(runtimeOptions(storagePrefix));
    const status = await (await rt.load('vad')).status();
    await rt.dispose();
    return status.active;
  },

  /** A new runtime on a primed store: create → load (IndexedDB, verify, session) → first result. */
  async coldRuntime(storagePrefix: string) {
    const {
      outputs: _,
      status,
      ...spans
    } = await timedRuntimeStart(runtimeOptions(storagePrefix), 'vad', {
      input: { data: frame(0), dims: [1, 512] },
      state: { data: new Float32Array(STATE_SIZE), dims: [2, 1, 128] },
      sr: { data: BigInt64Array.of(16_000n), dims: [] },
    });
    return {
      ...spans,
      backend: status.backend?.chosen ?? null,
      remembered: status.backend?.remembered ?? null,
    };
  },

  /** The floor: a new raw ORT worker given the bytes from memory, then one result. */
  async coldRaw(source: 'memory' | 'http') {
    const bytes = source === 'memory' ? modelBytes.slice() : undefined;
    const t0 = performance.now();
    const worker = new RawOrtWorker();
    await worker.request(
      source === 'memory'
        ? { type: 'load', wasmPaths: setupConfig.wasmPaths, bytes }
        : { type: 'load', wasmPaths: setupConfig.wasmPaths, url: setupConfig.modelUrl },
      bytes ? [bytes.buffer] : [],
    );
    const t1 = performance.now();
    await worker.run(frame(0), new Float32Array(STATE_SIZE));
    const t2 = performance.now();
    worker.terminate();
    return { totalMs: t2 - t0, loadMs: t1 - t0, firstRunMs: t2 - t1 };
  },

  /** fetch + verify (chunk and file hashes) + store, as the runtime's worker does it, on this page. */
  async downloadDirect(dbName: string, releases: SignedRelease[]) {
    const store = await ModelStore.open(dbName);
    const results = [];
    for (const signed of releases)
      results.push(await downloadRelease(store, signed, { server: setupConfig.server }));
    store.close();
    await new Promise((resolve) => {
      const request = indexedDB.deleteDatabase(dbName);
      request.onsuccess = request.onerror = request.onblocked = resolve;
    });
    return results;
  },

  /** The floor: a plain fetch of the same chunk URLs, as many in flight as the runtime uses. */
  async plainFetch(urls: string[], concurrency: number) {
    const queue = [...urls];
    let bytes = 0;
    const t0 = performance.now();
    const lane = async () => {
      for (let url = queue.shift(); url; url = queue.shift()) {
        const body = await (await fetch(url, { cache: 'no-store' })).arrayBuffer();
        bytes += body.byteLength;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
    return { ms: performance.now() - t0, bytes };
  },

  /** End to end through the runtime's worker: manifest check, verification, download, store. */
  async runtimeUpdate(storagePrefix: string) {
    const rt = await createRuntime(runtimeOptions(storagePrefix));
    const t0 = performance.now();
    const result = await rt.checkForUpdates();
    const ms = performance.now() - t0;
    await rt.dispose();
    return { ms, downloaded: result.downloaded, failures: result.failures };
  },
};

export type BenchPage = typeof bench;
(globalThis as unknown as { bench: BenchPage }).bench = bench;
(globalThis as unknown as { benchReady: boolean }).benchReady = true;
