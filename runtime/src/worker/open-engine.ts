import { NotFoundError, type Release, releaseId } from '@edgeship/protocol';
import { type EngineConfig, sameConfig } from '../engines/engine.ts';
import {
  configureOrt,
  createOnnxEngine,
  type OnnxExternalData,
  ortThreads,
  startOrt,
} from '../engines/onnx-engine.ts';
import { createOnnxProbe } from '../engines/probe.ts';
import { candidateConfigs, selectEngine, type Trial } from '../engines/select.ts';
import { sampleInputs } from '../engines/tensor.ts';
import { engineKey } from '../store/meta-schema.ts';
import type { ModelStore } from '../store/model-store.ts';
import { type BackendReport, type EngineStartStep, forcedBackend, type RuntimeConfig } from './config.ts';

/**
 * A release's bytes as its engine takes them, each file read from the store once, straight into
 * the buffer the engine is handed (no concatenation followed by another copy). openEngine empties
 * it once the engine holds its own copy, so the JS-side bytes can be collected before the first run.
 */
export interface ReleaseBytes {
  /** ONNX: the .onnx graph. TF.js: model.json. */
  model: Uint8Array | null;
  /** ONNX: the external-data files (release files after the first), by the path the graph names. */
  externalData: OnnxExternalData[];
  /** TF.js: every weight shard, back to back in release order (the one buffer tfjs takes). */
  weights: Uint8Array | null;
}

/**
 * Reads and verifies a release's files (ModelStore.readFile checks every chunk), or takes the
 * ones its download just verified and left in memory (ModelStore.handOver, a first load).
 */
export async function readReleaseBytes(
  store: ModelStore,
  id: string,
  release: Release,
): Promise<ReleaseBytes> {
  const [first, ...rest] = release.files;
  const fresh = store.takeHandedOver(id);
  if (fresh) return handedOver(release, fresh);
  const model = await store.readFile(id, first!.path);
  if (release.format === 'onnx') {
    const externalData: OnnxExternalData[] = [];
    for (const file of rest)
      externalData.push({ path: file.path, data: await store.readFile(id, file.path) });
    return { model, externalData, weights: null };
  }
  const weights = new Uint8Array(rest.reduce((n, f) => n + f.size, 0));
  await store.readFilesInto(
    id,
    rest.map((f) => f.path),
    weights,
  );
  return { model, externalData: [], weights };
}

/** ReleaseBytes from the files a download left in memory (each was verified as it arrived). */
function handedOver(release: Release, files: Map<string, Uint8Array>): ReleaseBytes {
  const [first, ...rest] = release.files.map((f) => {
    const bytes = files.get(f.path);
    if (!bytes) throw new NotFoundError(`${releaseId(release)}: ${f.path} was not handed over`);
    return { path: f.path, data: bytes };
  });
  if (release.format === 'onnx') return { model: first!.data, externalData: rest, weights: null };
  // TF.js takes its shards as one buffer: one shard is that buffer already.
  if (rest.length === 1) return { model: first!.data, externalData: [], weights: rest[0]!.data };
  const weights = new Uint8Array(rest.reduce((n, f) => n + f.data.length, 0));
  let offset = 0;
  for (const f of rest) {
    weights.set(f.data, offset);
    offset += f.data.length;
  }
  return { model: first!.data, externalData: [], weights };
}

/**
 * Opens a release on the fastest backend for this device: measured once per release (and
 * remembered in the store), among the candidates of the app's `backend` option when it forces
 * one (their thread counts, remembered for that option). Empties `bytes` once done.
 */
export async function openEngine(
  store: ModelStore,
  id: string,
  release: Release,
  bytes: ReleaseBytes,
  config: RuntimeConfig,
  onStep: (step: EngineStartStep) => void = () => {},
) {
  const { model, externalData, weights } = bytes;
  if (!model) throw new NotFoundError(`${id}: its bytes were already handed to an engine`);
  // The engine copies what it needs (ORT into its WASM heap, tfjs into tensors); the holder lets
  // go now so the caller's reference keeps nothing alive through the health check.
  bytes.model = null;
  bytes.externalData = [];
  bytes.weights = null;
  const { candidates, fallbacks, remembered, preferred } = await engineChoices(store, id, release, config);
  const load = async (engineConfig: EngineConfig) => {
    onStep('engine');
    if (release.format === 'onnx') {
      configureOrt({ wasmPaths: config.wasmPaths, threads: engineConfig.threads });
      return createOnnxEngine(model, engineConfig, release.quantization, externalData);
    }
    // TensorFlow.js is fetched only when a tfjs release loads: an ONNX-only app never downloads it.
    const { createTfjsEngine } = await import('../engines/tfjs-engine.ts');
    const modelJson = JSON.parse(new TextDecoder().decode(model));
    return createTfjsEngine({ modelJson, weights: weights! }, engineConfig, {
      wasmPaths: config.tfjsWasmPaths,
    });
  };
  const selected = await selectEngine({
    format: release.format,
    load,
    candidates,
    preferred,
    sample: sampleInputs(release.inputs),
    remembered,
    // Each ONNX candidate is timed in a fresh nested worker, so one thread count does not
    // preclude measuring another.
    trial:
      release.format === 'onnx'
        ? stepped(
            createOnnxProbe({
              model,
              externalData,
              quantization: release.quantization,
              wasmPaths: config.wasmPaths,
            }),
            onStep,
          )
        : undefined,
  });
  // Written only when it changed: a cold start on the remembered engine writes nothing.
  if (!remembered || !sameConfig(remembered, selected.chosen)) {
    await store.setMeta(engineKey(id, preferred), selected.chosen);
  }
  const backend: BackendReport = {
    chosen: selected.chosen,
    trials: selected.trials,
    fallbacks: [...fallbacks, ...selected.fallbacks],
    remembered: remembered !== undefined,
  };
  return { engine: selected.engine, backend };
}

/** What openEngine chooses among for a release here: candidates, the remembered and the app's choice. */
async function engineChoices(store: ModelStore, id: string, release: Release, config: RuntimeConfig) {
  const env = {
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    hardwareConcurrency: globalThis.navigator?.hardwareConcurrency ?? 1,
    // ORT fixes its thread count when it first starts in this worker: only that count can load here.
    ortThreads: release.format === 'onnx' ? ortThreads() : undefined,
    tfjsWasm: Boolean(config.tfjsWasmPaths),
  };
  const { candidates, fallbacks } = await candidateConfigs(release.format, env);
  const preferred = forcedBackend(config);
  const remembered = await store.getMeta(engineKey(id, preferred));
  return { candidates, fallbacks, remembered, preferred };
}

/**
 * Starts the engine an ONNX release will open on while its bytes are still downloading or being
 * read from the store, when that engine is known without measuring: the one remembered for the
 * release, or the only candidate the app's `backend` leaves (selectEngine loads either directly).
 * With several to measure, nothing starts early: the trial decides the thread count.
 */
export async function startEngineEarly(store: ModelStore, release: Release, config: RuntimeConfig) {
  // Started already (this worker's first release, or a download's head start): nothing to choose.
  if (release.format !== 'onnx' || ortThreads() !== undefined) return;
  try {
    const foreseen = foreseenConfig(await engineChoices(store, releaseId(release), release, config));
    if (foreseen) await startOrt(foreseen, { wasmPaths: config.wasmPaths });
  } catch {
    // Only a head start: the release's own open reports whatever fails here.
  }
}

/** The config selectEngine will load without a trial, if there is one. */
function foreseenConfig(choices: Awaited<ReturnType<typeof engineChoices>>): EngineConfig | undefined {
  const { candidates, remembered, preferred } = choices;
  if (remembered) return remembered;
  const group = preferred ? candidates.filter((c) => c.backend === preferred) : candidates;
  return group.length === 1 ? group[0] : undefined;
}

/** `trial`, announcing each run as a 'probe' step (bounded by the page, as the other steps are). */
function stepped(trial: Trial, onStep: (step: EngineStartStep) => void): Trial {
  return (config, sample, warmupRuns) => {
    onStep('probe');
    return trial(config, sample, warmupRuns);
  };
}
