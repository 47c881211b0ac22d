import {
  DisposedError,
  EdgeshipError,
  fromFloat16Array,
  InputError,
  MalformedError,
} from '@edgeship/protocol';
import * as tf from '@tensorflow/tfjs';
// Each import registers a backend factory; nothing initialises until a config asks for it.
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import {
  assertWebGpuExists,
  BackendUnavailableError,
  describeConfig,
  type Engine,
  type EngineConfig,
  startFailure,
} from './engine.ts';
import type { NamedTensors, TensorArray } from './tensor.ts';

/** A release's tfjs files, already in memory: the parsed model.json and its weight shards concatenated in manifest order. */
export interface TfjsFiles {
  modelJson: unknown;
  weights: Uint8Array;
}

type TfModel = tf.LayersModel | tf.GraphModel;

// tfjs has one global backend per realm. An engine switches back to its own before each run, so
// a losing autotune candidate that is still alive cannot leave the winner on the wrong backend.
const BACKEND_INIT_TIMEOUT_MS = 20_000;

async function useBackend(config: EngineConfig): Promise<void> {
  if (tf.getBackend() === config.backend) return;
  assertWebGpuExists(config);
  if (tf.findBackendFactory(config.backend) === null) {
    throw new BackendUnavailableError(
      'not-bundled',
      `${describeConfig(config)}: this tfjs build has no such backend`,
    );
  }
  let ok = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // A backend whose initialisation never settles must not hang the model load.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`initialisation took over ${BACKEND_INIT_TIMEOUT_MS} ms`)),
        BACKEND_INIT_TIMEOUT_MS,
      );
    });
    ok = await Promise.race([tf.setBackend(config.backend), timeout]);
  } catch (error) {
    throw startFailure(config, error, 'session-failed');
  } finally {
    clearTimeout(timer);
  }
  if (!ok) {
    throw new BackendUnavailableError(
      'session-failed',
      `${describeConfig(config)}: tfjs could not initialise the backend`,
    );
  }
}

/** Loads a tfjs layers or graph model from in-memory files onto one tfjs backend. */
export async function createTfjsEngine(
  files: TfjsFiles,
  config: EngineConfig,
  opts: { wasmPaths?: string } = {},
): Promise<Engine> {
  const modelJson = asModelJson(files.modelJson);
  if (config.backend === 'wasm') configureTfjsWasm(opts.wasmPaths);
  await useBackend(config);
  const weightSpecs = modelJson.weightsManifest.flatMap((group) => group.weights);
  // tfjs keeps the ArrayBuffer it is given: hand it a private copy, not the caller's (maybe shared) buffer.
  const weightData = files.weights.slice().buffer;
  const handler = tf.io.fromMemory(tf.io.getModelArtifactsForJSONSync(modelJson, weightSpecs, weightData));
  const isGraph =
    modelJson.format === 'graph-model' || Array.isArray((modelJson.modelTopology as { node?: unknown }).node);
  try {
    const model = isGraph ? await tf.loadGraphModel(handler) : await tf.loadLayersModel(handler);
    return new TfjsEngine(model, config);
  } catch (error) {
    throw startFailure(config, error);
  }
}

let tfjsWasmPaths: string | undefined;

/** tfjs's WASM files come from the app's origin, like ORT's; the path is fixed once set. */
function configureTfjsWasm(wasmPaths: string | undefined): void {
  if (!wasmPaths) {
    throw new BackendUnavailableError('not-available', 'tfjs wasm: no tfjsWasmPaths configured');
  }
  if (tfjsWasmPaths === undefined) {
    setWasmPaths(wasmPaths.endsWith('/') ? wasmPaths : `${wasmPaths}/`);
    // The threaded build starts its pthreads from `fn.toString()` of a bundled function, which a
    // minifying bundler breaks ("e is not defined"), and the init then never settles. SIMD on
    // one thread is what small models want anyway.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    tfjsWasmPaths = wasmPaths;
  }
}

function asModelJson(value: unknown): tf.io.ModelJSON {
  const json = value as Partial<tf.io.ModelJSON> | null;
  if (
    typeof json !== 'object' ||
    json === null ||
    typeof json.modelTopology !== 'object' ||
    !Array.isArray(json.weightsManifest)
  ) {
    throw new MalformedError('model.json needs a modelTopology object and a weightsManifest array');
  }
  return json as tf.io.ModelJSON;
}

class TfjsEngine implements Engine {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  private readonly inputDtypes: readonly tf.DataType[];
  private disposed = false;

  constructor(
    private readonly model: TfModel,
    readonly config: EngineConfig,
  ) {
    if (model instanceof tf.GraphModel) {
      this.inputNames = model.inputNodes;
      this.outputNames = model.outputNodes;
    } else {
      this.inputNames = model.inputNames;
      this.outputNames = model.outputNames;
    }
    this.inputDtypes = model.inputs.map((input) => input.dtype ?? 'float32');
  }

  async run(inputs: NamedTensors): Promise<NamedTensors> {
    if (this.disposed) throw new DisposedError('engine disposed');
    await useBackend(this.config);
    const feeds = this.inputNames.map((name, i) => {
      const input = inputs[name];
      if (!input) throw new InputError(`missing input "${name}"`);
      return { name, input, dtype: this.inputDtypes[i]! };
    });
    const tensors: tf.Tensor[] = [];
    let results: tf.Tensor[] = [];
    try {
      for (const { input, dtype } of feeds) tensors.push(toTfTensor(input.data, input.dims, dtype));
      if (this.model instanceof tf.GraphModel) {
        const feedDict = Object.fromEntries(feeds.map((f, i) => [f.name, tensors[i]!]));
        results = toList(await this.model.executeAsync(feedDict, [...this.outputNames]));
      } else {
        results = toList(
          this.model.predict(tensors.length === 1 ? tensors[0]! : tensors) as tf.Tensor | tf.Tensor[],
        );
      }
      const outputs: NamedTensors = {};
      for (const [i, name] of this.outputNames.entries()) {
        const tensor = results[i]!;
        // Always copy: on the CPU backend data() can be the tensor's own storage, shared with a
        // weight when an output is a constant, and transferring it would detach the model.
        outputs[name] = { data: copyOut(await tensor.data()), dims: [...tensor.shape] };
      }
      return outputs;
    } finally {
      tf.dispose([...tensors, ...results]);
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.model.dispose();
  }
}

function toList(result: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
  return Array.isArray(result) ? result : [result];
}

/** tfjs knows float32, int32 and bool: narrower ints widen to int32, float16 decodes, int64 must fit int32. */
function toTfTensor(data: TensorArray, dims: number[], dtype: tf.DataType): tf.Tensor {
  if (data instanceof Float32Array) return tf.tensor(data, dims, 'float32');
  if (data instanceof BigInt64Array) {
    const narrowed = new Int32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v > 2147483647n || v < -2147483648n)
        throw new InputError(`int64 value ${v} does not fit tfjs int32`);
      narrowed[i] = Number(v);
    }
    return tf.tensor(narrowed, dims, 'int32');
  }
  if (data instanceof Uint16Array) return tf.tensor(fromFloat16Array(data), dims, 'float32');
  if (data instanceof Uint8Array && dtype === 'bool') return tf.tensor(data, dims, 'bool');
  if (dtype === 'float32') return tf.tensor(Float32Array.from(data), dims, 'float32');
  return tf.tensor(Int32Array.from(data), dims, 'int32');
}

function copyOut(data: tf.TypedArray | string[]): TensorArray {
  if (data instanceof Float32Array || data instanceof Int32Array || data instanceof Uint8Array)
    return data.slice();
  throw new EdgeshipError('E_NO_BACKEND', 'tfjs model output is not a numeric tensor');
}
