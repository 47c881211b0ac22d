import { concatBytes, type Release } from '@edgeship/protocol';
import type { EngineConfig } from '../engines/engine.ts';
import { configureOrt, createOnnxEngine, ortThreads } from '../engines/onnx-engine.ts';
import { createOnnxProbe } from '../engines/probe.ts';
import { candidateConfigs, selectEngine } from '../engines/select.ts';
import { sampleInputs } from '../engines/tensor.ts';
import type { ModelStore } from '../store/model-store.ts';
import type { BackendReport, RuntimeConfig } from './config.ts';

const engineKey = (id: string) => `engine:${id}`;

/**
 * Opens a release on the fastest backend for this device: measured once per release (and
 * remembered in the store), or forced by the app's `backend` option.
 */
export async function openEngine(
  store: ModelStore,
  id: string,
  release: Release,
  files: Map<string, Uint8Array>,
  config: RuntimeConfig,
) {
  const env = {
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    hardwareConcurrency: globalThis.navigator?.hardwareConcurrency ?? 1,
    // ORT fixes its thread count when it first starts in this worker: only that count can load here.
    ortThreads: release.format === 'onnx' ? ortThreads() : undefined,
    tfjsWasm: Boolean(config.tfjsWasmPaths),
  };
  const { candidates, fallbacks } = await candidateConfigs(release.format, env);
  const remembered = await store.getMeta<EngineConfig>(engineKey(id));
  const preferred = config.backend && config.backend !== 'auto' ? config.backend : undefined;
  const load = async (engineConfig: EngineConfig) => {
    if (release.format === 'onnx') {
      configureOrt({ wasmPaths: config.wasmPaths, threads: engineConfig.threads });
      return createOnnxEngine(files.get(release.files[0]!.path)!, engineConfig, release.quantization);
    }
    // TensorFlow.js is fetched only when a tfjs release loads: an ONNX-only app never downloads it.
    const { createTfjsEngine } = await import('../engines/tfjs-engine.ts');
    const [modelFile, ...weightFiles] = release.files;
    const modelJson = JSON.parse(new TextDecoder().decode(files.get(modelFile!.path)!));
    return createTfjsEngine(
      { modelJson, weights: concatBytes(weightFiles.map((f) => files.get(f.path)!)) },
      engineConfig,
      { wasmPaths: config.tfjsWasmPaths },
    );
  };
  const selected = await selectEngine({
    format: release.format,
    load,
    candidates,
    preferred,
    sample: sampleInputs(release.inputs),
    remembered: preferred ? undefined : remembered,
    // Each ONNX candidate is timed in a fresh nested worker, so one thread count does not
    // preclude measuring another.
    trial:
      release.format === 'onnx'
        ? createOnnxProbe({
            model: files.get(release.files[0]!.path)!,
            quantization: release.quantization,
            wasmPaths: config.wasmPaths,
          })
        : undefined,
  });
  if (!preferred) await store.setMeta(engineKey(id), selected.chosen);
  const backend: BackendReport = {
    chosen: selected.chosen,
    trials: selected.trials,
    fallbacks: [...fallbacks, ...selected.fallbacks],
    remembered: !preferred && remembered !== undefined,
  };
  return { engine: selected.engine, backend };
}
