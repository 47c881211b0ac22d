// The package's default entry (dist/ort.bundle.min.mjs) registers both the JSEP WebGPU EP and the
// WASM EP. `onnxruntime-web/webgpu` would swap JSEP for the newer native WebGPU EP (asyncify build);
// `onnxruntime-web/wasm` has no WebGPU at all.
import {
  DisposedError,
  EdgeshipError,
  InputError,
  onnxSessionOptions,
  type Release,
} from '@edgeship/protocol';
import * as ort from 'onnxruntime-web';
import {
  assertWebGpuExists,
  BackendUnavailableError,
  describeConfig,
  type Engine,
  type EngineConfig,
  startFailure,
} from './engine.ts';
import { defaultOrtWasmPaths, type OrtWasmPaths, ortAssetProblem } from './ort-assets.ts';
import type { NamedTensors, TensorArray } from './tensor.ts';

export interface OrtOptions {
  /**
   * Same-origin folder (ending in "/") holding ort-wasm-simd-threaded.jsep.{mjs,wasm}, or the two
   * files' URLs. Left out: the copies shipped beside the worker (ort-assets.ts).
   */
  wasmPaths?: OrtWasmPaths | string;
  /**
   * WASM threads for configs that do not name their own; > 1 needs crossOriginIsolated. Left out,
   * ORT keeps what it runs with (a config without a thread count, e.g. one ORT cannot run anyway).
   */
  threads?: number;
  /** The engine already runs in a worker: ORT's own proxy worker would only add a hop. */
  proxy?: false;
}

// onnxruntime-web reads env.wasm.numThreads once, when its WASM instance first initialises (on
// the first session), and ignores it afterwards. This module remembers that moment so a config
// asking for another thread count fails loudly instead of silently running with the old one.
let initialisedThreads: number | undefined;

/** Points ORT at the app's own copy of its WASM files. Call before the first engine. */
export function configureOrt(opts: OrtOptions): void {
  if (opts.threads !== undefined && initialisedThreads !== undefined && opts.threads !== initialisedThreads) {
    throw new BackendUnavailableError(
      'threads-fixed',
      `onnxruntime-web already initialised with ${initialisedThreads} thread(s); it cannot switch to ${opts.threads} in this worker`,
    );
  }
  ort.env.wasm.wasmPaths = opts.wasmPaths ?? defaultOrtWasmPaths();
  if (opts.threads !== undefined) ort.env.wasm.numThreads = opts.threads;
  ort.env.wasm.proxy = opts.proxy ?? false;
  ort.env.logLevel = 'error';
}

/** The thread count `config` runs with, fixed for this realm on its first session (see above). */
function fixThreads(config: EngineConfig): number {
  const threads = config.threads ?? initialisedThreads ?? ort.env.wasm.numThreads ?? 1;
  if (threads > 1 && !globalThis.crossOriginIsolated) {
    // Without SharedArrayBuffer ORT quietly drops to one thread; say so instead.
    throw new BackendUnavailableError(
      'not-isolated',
      `${describeConfig(config)}: WASM threads need a cross-origin isolated page`,
    );
  }
  if (initialisedThreads === undefined) {
    ort.env.wasm.numThreads = threads;
    initialisedThreads = threads;
  } else if (threads !== initialisedThreads) {
    throw new BackendUnavailableError(
      'threads-fixed',
      `${describeConfig(config)}: onnxruntime-web already initialised with ${initialisedThreads} thread(s) in this worker`,
    );
  }
  return threads;
}

/** A 65-byte graph, one Identity node over float32 [1] (written with onnx-proto): the cheapest session. */
const STARTER_MODEL = new Uint8Array([
  8, 8, 58, 55, 10, 16, 10, 1, 120, 18, 1, 121, 34, 8, 73, 100, 101, 110, 116, 105, 116, 121, 18, 1, 119, 90,
  15, 10, 1, 120, 18, 10, 10, 8, 8, 1, 18, 4, 10, 2, 8, 1, 98, 15, 10, 1, 121, 18, 10, 10, 8, 8, 1, 18, 4, 10,
  2, 8, 1, 66, 4, 10, 0, 16, 17,
]);

let started: Promise<void> | null = null;

/**
 * Starts onnxruntime-web for `config` before a model's bytes are at hand: fetching and compiling
 * its WASM, starting its threads and its execution provider take a second or two that can overlap
 * a download or a read from the store. ORT initialises once per realm, on its first session; a
 * session over a one-node graph is that first session here, and the model's own session then
 * finds ORT ready (or joins its start in flight). Fixes the thread count as that first session
 * would. Never rejects: whatever fails here fails again, and is reported, when the model opens.
 */
export function startOrt(config: EngineConfig, opts: OrtOptions = {}): Promise<void> {
  if (started || initialisedThreads !== undefined || !ORT_BACKENDS.has(config.backend)) {
    return started ?? Promise.resolve();
  }
  started = (async () => {
    configureOrt({ ...opts, threads: config.threads });
    assertWebGpuExists(config);
    fixThreads(config);
    const session = await ort.InferenceSession.create(STARTER_MODEL, {
      executionProviders: [config.backend],
      logSeverityLevel: 3,
    });
    await session.release();
  })().catch(() => {});
  return started;
}

/** The thread count ORT initialised with in this realm, or undefined before the first session. */
export function ortThreads(): number | undefined {
  return initialisedThreads;
}

const ORT_BACKENDS = new Set(['webgpu', 'wasm']);

/** One ONNX external-data file: `path` as the model's tensors name it (their `location`). */
export interface OnnxExternalData {
  path: string;
  data: Uint8Array;
}

/**
 * A session over `model`, with its initializers' external data (models past protobuf's 2 GB
 * limit keep their weights in a `model.onnx.data` file beside the graph). ORT copies the bytes
 * into its WASM heap: callers may drop theirs once this resolves.
 */
export async function createOnnxEngine(
  model: Uint8Array,
  config: EngineConfig,
  quantization: Release['quantization'] = { method: 'none' },
  externalData: readonly OnnxExternalData[] = [],
): Promise<Engine> {
  if (!ORT_BACKENDS.has(config.backend)) {
    throw new BackendUnavailableError(
      'not-available',
      `onnxruntime-web runs on webgpu or wasm, not ${config.backend}`,
    );
  }
  assertWebGpuExists(config);
  const threads = fixThreads(config);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(model, {
      ...onnxSessionOptions(quantization),
      ...(externalData.length > 0 ? { externalData } : {}),
      executionProviders: [config.backend],
      logSeverityLevel: 3, // ORT warns on every WebGPU session that shape ops run on CPU: expected.
    });
  } catch (error) {
    // ORT's own words for a missing or misplaced WASM file rarely name the file: say which URL failed.
    const missing = await ortAssetProblem(ort.env.wasm.wasmPaths);
    if (missing) throw new BackendUnavailableError('wasm-missing', missing, { cause: error });
    // ORT's message tells an operator the EP lacks from a model that does not parse.
    throw startFailure(config, error);
  }
  return new OnnxEngine(session, { ...config, threads });
}

class OnnxEngine implements Engine {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  private readonly inputTypes = new Map<string, string>();
  // One run at a time: a JSEP session must not be re-entered while a run awaits the GPU.
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(
    private readonly session: ort.InferenceSession,
    readonly config: EngineConfig,
  ) {
    this.inputNames = session.inputNames;
    this.outputNames = session.outputNames;
    for (const meta of session.inputMetadata) {
      if (meta.isTensor) this.inputTypes.set(meta.name, meta.type);
    }
  }

  run(inputs: NamedTensors): Promise<NamedTensors> {
    const result = this.queue.then(() => this.runNow(inputs));
    this.queue = result.catch(() => {});
    return result;
  }

  private async runNow(inputs: NamedTensors): Promise<NamedTensors> {
    if (this.disposed) throw new DisposedError('engine disposed');
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of this.inputNames) {
      const input = inputs[name];
      if (!input) throw new InputError(`missing input "${name}"`);
      feeds[name] = toOrtTensor(input.data, input.dims, this.inputTypes.get(name));
    }
    const results = await this.session.run(feeds);
    const outputs: NamedTensors = {};
    try {
      for (const name of this.outputNames) {
        const tensor = results[name]!;
        // A WASM output is on the CPU already: reading .data skips getData()'s promise per output.
        const data = tensor.location === 'cpu' ? tensor.data : await tensor.getData();
        outputs[name] = { data: ownedArray(data), dims: [...tensor.dims] };
      }
    } finally {
      for (const tensor of Object.values(results)) tensor.dispose();
    }
    return outputs;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.queue;
    await this.session.release();
  }
}

/** Uint8Array and Uint16Array are ambiguous (uint8/bool, float16/uint16): the model's metadata decides. */
function toOrtTensor(data: TensorArray, dims: number[], modelType: string | undefined): ort.Tensor {
  if (data instanceof Float32Array) return new ort.Tensor('float32', data, dims);
  if (data instanceof Int32Array) return new ort.Tensor('int32', data, dims);
  if (data instanceof BigInt64Array) return new ort.Tensor('int64', data, dims);
  if (data instanceof Int8Array) return new ort.Tensor('int8', data, dims);
  if (data instanceof Uint8Array) return new ort.Tensor(modelType === 'bool' ? 'bool' : 'uint8', data, dims);
  return new ort.Tensor(modelType === 'uint16' ? 'uint16' : 'float16', data, dims);
}

/**
 * ORT copies outputs out of the WASM heap into fresh arrays; this keeps them transferable and in
 * the TensorArray family (Float16Array, where the browser has it, travels as its raw bits).
 */
function ownedArray(data: unknown): TensorArray {
  const F16 = (globalThis as { Float16Array?: new (...args: never[]) => ArrayBufferView }).Float16Array;
  if (F16 && data instanceof F16) {
    const view = data as ArrayBufferView;
    return new Uint16Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
  }
  if (
    data instanceof Float32Array ||
    data instanceof Int32Array ||
    data instanceof BigInt64Array ||
    data instanceof Int8Array ||
    data instanceof Uint8Array ||
    data instanceof Uint16Array
  ) {
    const whole =
      data.buffer instanceof ArrayBuffer &&
      data.byteOffset === 0 &&
      data.byteLength === data.buffer.byteLength;
    return whole ? data : data.slice();
  }
  if (data instanceof Float64Array) return Float32Array.from(data);
  if (data instanceof Int16Array || data instanceof Uint32Array) return Int32Array.from(data);
  if (data instanceof BigUint64Array) return BigInt64Array.from(data, (v) => BigInt.asIntN(64, v));
  throw new EdgeshipError('E_NO_BACKEND', 'model output is not a numeric tensor');
}
