import {
  type Backend,
  BackendUnavailableError,
  describeConfig,
  type Engine,
  type EngineConfig,
  errorText,
  type FallbackReason,
  fallbackCodeOf,
  type ModelFormat,
  NoBackendError,
  sameConfig,
} from './engine.ts';
import { hasNonFinite, type NamedTensors } from './tensor.ts';

/**
 * Times one config somewhere other than the calling worker and resolves to its median run time in
 * ms (rejects with the reason it cannot run). See createOnnxProbe: ORT's thread count is fixed per
 * worker, so thread counts can only be compared in throwaway workers.
 */
export type Trial = (config: EngineConfig, sample: NamedTensors, warmupRuns: number) => Promise<number>;

/** One candidate's measurement: its median run time, or why it could not run. */
export interface TrialResult {
  config: EngineConfig;
  medianMs?: number;
  error?: string;
}

export interface SelectOptions {
  format: ModelFormat;
  /** Loads the model on one config in this worker. */
  load: (config: EngineConfig) => Promise<Engine>;
  /** In order of preference (see candidateConfigs). */
  candidates: EngineConfig[];
  /** Race this backend's candidates first; the others only run if none of them works. */
  preferred?: Backend;
  /** Timed runs per candidate, after one untimed run (default 3). */
  warmupRuns?: number;
  sample: NamedTensors;
  /** The config autotune chose on an earlier load of this release: used without trials. */
  remembered?: EngineConfig;
  /** Times candidates out of process (see Trial); without it each candidate is loaded and timed here. */
  trial?: Trial;
}

export interface Selection {
  engine: Engine;
  chosen: EngineConfig;
  trials: TrialResult[];
  fallbacks: FallbackReason[];
}

/**
 * Picks the engine config for a release, like onnxruntime's backend registry: try each candidate
 * once, report why each rejected one failed, and throw one E_NO_BACKEND listing them all if none
 * works. On a first load it autotunes: the working candidates race on `sample` and the fastest
 * median wins. `remembered` (the earlier winner) skips the race; `preferred` races one backend's
 * candidates on their own first, so a slower preferred backend still wins over a faster other one.
 */
export async function selectEngine(opts: SelectOptions): Promise<Selection> {
  const fallbacks: FallbackReason[] = [];
  const trials: TrialResult[] = [];
  const warmupRuns = opts.warmupRuns ?? 3;
  let candidates = opts.candidates;

  if (opts.remembered) {
    const remembered = opts.remembered;
    try {
      const engine = await loadHealthy(opts.load, remembered, opts.sample);
      return { engine, chosen: remembered, trials, fallbacks };
    } catch (error) {
      fallbacks.push({
        config: remembered,
        code: 'remembered-failed',
        reason: `remembered config failed: ${errorText(error)}`,
      });
      candidates = candidates.filter((c) => !sameConfig(c, remembered));
    }
  }

  const groups: EngineConfig[][] = [candidates];
  if (opts.preferred) {
    const preferred = candidates.filter((c) => c.backend === opts.preferred);
    if (preferred.length === 0) {
      fallbacks.push({
        config: { backend: opts.preferred },
        code: 'not-available',
        reason: `preferred backend ${opts.preferred} is not available here for ${opts.format}`,
      });
    } else {
      groups.splice(
        0,
        1,
        preferred,
        candidates.filter((c) => c.backend !== opts.preferred),
      );
    }
  }

  for (const group of groups) {
    const picked = await fastest(group, opts, fallbacks, trials, warmupRuns);
    if (picked) return { engine: picked, chosen: picked.config, trials, fallbacks };
  }
  throw new NoBackendError(opts.format, fallbacks);
}

async function fastest(
  group: EngineConfig[],
  opts: SelectOptions,
  fallbacks: FallbackReason[],
  trials: TrialResult[],
  warmupRuns: number,
): Promise<Engine | undefined> {
  // With a single candidate there is nothing to compare: load it here directly.
  if (opts.trial && group.length > 1)
    return fastestByTrial(group, opts.trial, opts, fallbacks, trials, warmupRuns);
  let best: Engine | undefined;
  let bestMs = Number.POSITIVE_INFINITY;
  for (const config of group) {
    const timed = await loadAndTime(opts, config, warmupRuns);
    trials.push(timed.trial);
    if (!timed.engine) {
      fallbacks.push({ config, code: fallbackCodeOf(timed.failure), reason: timed.trial.error! });
      continue;
    }
    // Keep only the leader alive, so at most two copies of the model are loaded at once.
    if (timed.trial.medianMs! < bestMs) {
      await best?.dispose();
      best = timed.engine;
      bestMs = timed.trial.medianMs!;
    } else {
      await timed.engine.dispose();
    }
  }
  return best;
}

/** Races the group out of process, then loads the winners here in order until one works. */
async function fastestByTrial(
  group: EngineConfig[],
  trial: Trial,
  opts: SelectOptions,
  fallbacks: FallbackReason[],
  trials: TrialResult[],
  warmupRuns: number,
): Promise<Engine | undefined> {
  const ranked: Array<{ config: EngineConfig; medianMs: number }> = [];
  for (const config of group) {
    try {
      const medianMs = await trial(config, opts.sample, warmupRuns);
      trials.push({ config, medianMs });
      ranked.push({ config, medianMs });
    } catch (error) {
      trials.push({ config, error: errorText(error) });
      fallbacks.push({ config, code: fallbackCodeOf(error), reason: errorText(error) });
    }
  }
  ranked.sort((a, b) => a.medianMs - b.medianMs);
  for (const { config } of ranked) {
    try {
      return await loadHealthy(opts.load, config, opts.sample);
    } catch (error) {
      fallbacks.push({
        config,
        code: fallbackCodeOf(error),
        reason: `won the trial but failed to load here: ${errorText(error)}`,
      });
    }
  }
  return undefined;
}

async function loadAndTime(
  opts: SelectOptions,
  config: EngineConfig,
  warmupRuns: number,
): Promise<{ trial: TrialResult; engine?: Engine; failure?: unknown }> {
  let engine: Engine | undefined;
  try {
    engine = await opts.load(config);
    const medianMs = await timeEngine(engine, opts.sample, warmupRuns);
    return { trial: { config, medianMs }, engine };
  } catch (error) {
    await engine?.dispose().catch(() => {});
    return { trial: { config, error: errorText(error) }, failure: error };
  }
}

/** Loads a config and runs `sample` once: an engine that cannot give finite outputs is no engine. */
async function loadHealthy(
  load: SelectOptions['load'],
  config: EngineConfig,
  sample: NamedTensors,
): Promise<Engine> {
  const engine = await load(config);
  try {
    await runChecked(engine, sample);
    return engine;
  } catch (error) {
    await engine.dispose().catch(() => {});
    throw error;
  }
}

async function runChecked(engine: Engine, sample: NamedTensors): Promise<void> {
  const bad = hasNonFinite(await engine.run(sample));
  if (bad !== null) {
    throw new BackendUnavailableError(
      'non-finite',
      `${describeConfig(engine.config)}: output "${bad}" is not finite on the sample input`,
    );
  }
}

/**
 * Median wall time of `runs` inferences on `sample`, after one untimed run that pays for shader
 * compilation and first-touch allocation. That first run's outputs must be finite.
 */
export async function timeEngine(engine: Engine, sample: NamedTensors, runs: number): Promise<number> {
  await runChecked(engine, sample);
  const times: number[] = [];
  for (let i = 0; i < Math.max(1, runs); i++) {
    const start = performance.now();
    await engine.run(sample);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const mid = times.length >> 1;
  return times.length % 2 ? times[mid]! : (times[mid - 1]! + times[mid]!) / 2;
}

export interface DeviceEnv {
  crossOriginIsolated: boolean;
  hardwareConcurrency: number;
  /** navigator.gpu by default; null means "no WebGPU" (apps and tests can rule it out). */
  gpu?: GpuLike | null;
  /**
   * The thread count onnxruntime-web already started with in this worker (ortThreads()), if any:
   * ORT cannot change it, so only configs with that count can load here.
   */
  ortThreads?: number;
  /** The app serves tfjs-backend-wasm's files (RuntimeConfig.tfjsWasmPaths). */
  tfjsWasm?: boolean;
}

export interface GpuLike {
  requestAdapter(): Promise<unknown>;
}

const ADAPTER_TIMEOUT_MS = 5_000;

/**
 * The configs worth trying on this device, best first, and why the others are not:
 * onnx: WebGPU (only when navigator.gpu gives an adapter), WASM with threads (only when
 * cross-origin isolated, since threads need SharedArrayBuffer), single-threaded WASM (SIMD; always).
 * tfjs: WebGPU (with an adapter), WebGL, WASM (when its files are served), then plain-JS CPU.
 */
export async function candidateConfigs(
  format: ModelFormat,
  env: DeviceEnv,
): Promise<{ candidates: EngineConfig[]; fallbacks: FallbackReason[] }> {
  const fallbacks: FallbackReason[] = [];
  const candidates: EngineConfig[] = [];
  if (format === 'tfjs') {
    const gpu = await webGpuAdapterProblem(env.gpu === undefined ? navigatorGpu() : env.gpu);
    if (gpu === null) candidates.push({ backend: 'webgpu' });
    else fallbacks.push({ config: { backend: 'webgpu' }, code: 'no-webgpu', reason: gpu });
    candidates.push({ backend: 'webgl' });
    if (env.tfjsWasm) candidates.push({ backend: 'wasm' });
    else {
      fallbacks.push({
        config: { backend: 'wasm' },
        code: 'not-available',
        reason: 'tfjs wasm needs tfjsWasmPaths (its .wasm files served from the app origin)',
      });
    }
    candidates.push({ backend: 'cpu' });
    return { candidates, fallbacks };
  }

  if (env.ortThreads !== undefined) return fixedThreadCandidates(env.ortThreads, env);
  const threads = Math.min(4, Math.max(2, Math.ceil(env.hardwareConcurrency / 2)));
  const threaded = env.crossOriginIsolated && env.hardwareConcurrency > 1;
  const gpu = await webGpuAdapterProblem(env.gpu === undefined ? navigatorGpu() : env.gpu);
  if (gpu === null) candidates.push({ backend: 'webgpu', threads: threaded ? threads : 1 });
  else fallbacks.push({ config: { backend: 'webgpu' }, code: 'no-webgpu', reason: gpu });
  if (threaded) candidates.push({ backend: 'wasm', threads });
  else if (env.crossOriginIsolated) {
    fallbacks.push({
      config: { backend: 'wasm', threads },
      code: 'single-core',
      reason: 'one CPU core: no WASM threads',
    });
  } else {
    fallbacks.push({
      config: { backend: 'wasm', threads },
      code: 'not-isolated',
      reason: 'not cross-origin isolated: WASM threads need SharedArrayBuffer (COOP/COEP headers)',
    });
  }
  candidates.push({ backend: 'wasm', threads: 1 });
  return { candidates, fallbacks };
}

/** When ORT already runs in this worker: its thread count, on WebGPU (if any) and WASM. */
async function fixedThreadCandidates(
  threads: number,
  env: DeviceEnv,
): Promise<{ candidates: EngineConfig[]; fallbacks: FallbackReason[] }> {
  const candidates: EngineConfig[] = [];
  const fallbacks: FallbackReason[] = [];
  const gpu = await webGpuAdapterProblem(env.gpu === undefined ? navigatorGpu() : env.gpu);
  if (gpu === null) candidates.push({ backend: 'webgpu', threads });
  else fallbacks.push({ config: { backend: 'webgpu' }, code: 'no-webgpu', reason: gpu });
  candidates.push({ backend: 'wasm', threads });
  fallbacks.push({
    config: { backend: 'wasm' },
    code: 'threads-fixed',
    reason: `onnxruntime-web already runs with ${threads} thread(s) in this worker; other counts are not tried`,
  });
  return { candidates, fallbacks };
}

function navigatorGpu(): GpuLike | null {
  return (globalThis.navigator as { gpu?: GpuLike } | undefined)?.gpu ?? null;
}

/** Null when a WebGPU adapter exists, else why not. */
async function webGpuAdapterProblem(gpu: GpuLike | null): Promise<string | null> {
  if (!gpu) return 'no WebGPU: navigator.gpu is missing';
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // requestAdapter can hang on broken drivers; a model load must not hang with it.
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), ADAPTER_TIMEOUT_MS);
    });
    const adapter = await Promise.race([gpu.requestAdapter(), timeout]);
    if (adapter === 'timeout')
      return `no WebGPU adapter: requestAdapter did not answer in ${ADAPTER_TIMEOUT_MS} ms`;
    return adapter ? null : 'no WebGPU adapter: requestAdapter returned null';
  } catch (error) {
    return `no WebGPU adapter: ${errorText(error)}`;
  } finally {
    clearTimeout(timer);
  }
}
