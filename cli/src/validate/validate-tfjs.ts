import { concatBytes, InputError } from '@edgeship/protocol';
import type { TensorContract } from '@edgeship/runtime/contract';
import * as tf from '@tensorflow/tfjs';
import type { RunOutputs } from './compare.ts';
import { contractRunner, type FrameModel } from './contract-runner.ts';
import { type ModelRunner, runGates, type ValidationInputs, type ValidationReport } from './gates.ts';
import { type Feeds, numbersOf, type TensorLike } from './run-sequence.ts';

/** A TensorFlow.js model in memory: `model.json`, then each weight shard by the path the manifest names. */
export type TfjsFiles = ReadonlyMap<string, Uint8Array>;

export interface ValidateTfjsOptions extends ValidationInputs {
  reference: TfjsFiles;
  candidate: TfjsFiles;
}

/**
 * Runs the reference and the candidate in TensorFlow.js (pure-JS CPU backend: tfjs-node does not
 * install here) on the same frames, and holds the candidate to the same gates as an ONNX model.
 */
export async function validateTfjs(opts: ValidateTfjsOptions): Promise<ValidationReport> {
  const contract = opts.contract ?? null;
  return runGates(
    { bytes: totalBytes(opts.reference), load: () => loadTfjsRunner(opts.reference, contract) },
    { bytes: totalBytes(opts.candidate), load: () => loadTfjsRunner(opts.candidate, contract) },
    opts,
  );
}

type TfjsModel = tf.LayersModel | tf.GraphModel;

/**
 * Loads a layers or a graph model from memory, no file system or HTTP. Graph or layers is decided
 * as runtime/src/engines/tfjs-engine.ts decides it, so the gates run what devices will run; each
 * frame goes through `contract` (the runtime's code) when given.
 */
export async function loadTfjsRunner(
  files: TfjsFiles,
  contract: TensorContract | null = null,
): Promise<ModelRunner> {
  await useCpuBackend();
  const start = performance.now();
  const modelJson = parseModelJson(files);
  const weightSpecs = modelJson.weightsManifest.flatMap((group) => group.weights);
  const handler = tf.io.fromMemory(
    tf.io.getModelArtifactsForJSONSync(modelJson, weightSpecs, joinShards(modelJson, files)),
  );
  const model: TfjsModel = isGraphModel(modelJson)
    ? await tf.loadGraphModel(handler)
    : await tf.loadLayersModel(handler);
  return contractRunner(new TfjsModelRun(model, performance.now() - start), contract);
}

let backendReady: Promise<void> | undefined;

function useCpuBackend(): Promise<void> {
  backendReady ??= (async () => {
    // tfjs prints a "install tfjs-node" hint through console.warn; the CLI's stderr carries only
    // its one-line errors. Prod mode silences tfjs's logging and nothing else.
    tf.enableProdMode();
    if (!(await tf.setBackend('cpu'))) throw new Error('tfjs could not start its CPU backend');
  })();
  return backendReady;
}

export function isGraphModel(modelJson: tf.io.ModelJSON): boolean {
  return (
    modelJson.format === 'graph-model' || Array.isArray((modelJson.modelTopology as { node?: unknown }).node)
  );
}

function parseModelJson(files: TfjsFiles): tf.io.ModelJSON {
  const bytes = files.get('model.json');
  if (!bytes) throw new Error('the release has no model.json');
  let json: Partial<tf.io.ModelJSON> | null;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new Error('model.json is not JSON');
  }
  if (typeof json?.modelTopology !== 'object' || !Array.isArray(json.weightsManifest)) {
    throw new Error('model.json needs a modelTopology object and a weightsManifest array');
  }
  return json as tf.io.ModelJSON;
}

/** Every group's shards, in manifest order: the one buffer tfjs's own loaders hand the model. */
function joinShards(modelJson: tf.io.ModelJSON, files: TfjsFiles): ArrayBuffer {
  const shards = modelJson.weightsManifest.flatMap((group) =>
    group.paths.map((path) => {
      const shard = files.get(path);
      if (!shard) throw new Error(`model.json names shard ${path}, which the release does not hold`);
      return shard;
    }),
  );
  // A fresh buffer: tfjs keeps the one it is given, and a caller's view may sit in a shared pool.
  return concatBytes(shards).buffer;
}

/** One frame at a time in tfjs; sequences, carry and the contract are contractRunner's. */
class TfjsModelRun implements FrameModel {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  private readonly inputDtypes: readonly tf.DataType[];
  private needsAsync = false;

  constructor(
    private readonly model: TfjsModel,
    readonly loadMs: number,
  ) {
    const graph = model instanceof tf.GraphModel;
    this.inputNames = graph ? model.inputNodes : (model as tf.LayersModel).inputNames;
    this.outputNames = graph ? model.outputNodes : (model as tf.LayersModel).outputNames;
    this.inputDtypes = model.inputs.map((input) => input.dtype ?? 'float32');
  }

  async run(feeds: Feeds): Promise<RunOutputs> {
    const inputs: tf.Tensor[] = [];
    let results: tf.Tensor[] = [];
    try {
      for (const [i, name] of this.inputNames.entries()) {
        const feed = feeds[name];
        if (!feed) throw new Error(`no input "${name}" in the calibration frame`);
        inputs.push(toTfTensor(name, feed, this.inputDtypes[i]!));
      }
      if (this.model instanceof tf.GraphModel) {
        const feedDict = Object.fromEntries(this.inputNames.map((name, i) => [name, inputs[i]!]));
        results = toList(await this.executeGraph(this.model, feedDict));
      } else {
        results = toList(this.model.predict(inputs.length === 1 ? inputs[0]! : inputs));
      }
      const outputs: RunOutputs = {};
      for (const [i, name] of this.outputNames.entries())
        outputs[name] = await fromTfTensor(name, results[i]!);
      return outputs;
    } finally {
      tf.dispose([...inputs, ...results]);
    }
  }

  /**
   * execute() where the graph allows it (the same kernels, so the same numbers as the runtime's
   * executeAsync()), executeAsync() once a control-flow or dynamic-shape op requires it. Not
   * executeAsync() alone: on a plain graph it console.warns on every run, and the CLI's stderr
   * carries only its one-line errors.
   */
  private async executeGraph(model: tf.GraphModel, feeds: tf.NamedTensorMap) {
    const outputs = [...this.outputNames];
    if (!this.needsAsync) {
      try {
        return model.execute(feeds, outputs);
      } catch (error) {
        // Thrown while planning, before any node ran: nothing to undo.
        if (!/use model\.executeAsync\(\)/.test((error as Error).message)) throw error;
        this.needsAsync = true;
      }
    }
    return model.executeAsync(feeds, outputs);
  }

  async release(): Promise<void> {
    this.model.dispose();
  }
}

/** tfjs holds float32, int32 and bool: other integer inputs (int64 included) must fit int32. */
function toTfTensor(name: string, feed: TensorLike, dtype: tf.DataType): tf.Tensor {
  const dims = [...feed.dims];
  if (dtype === 'float32') {
    const data = feed.data instanceof Float32Array ? feed.data : Float32Array.from(numbersOf(feed));
    return tf.tensor(data, dims, 'float32');
  }
  const values = numbersOf(feed);
  if (dtype === 'bool')
    return tf.tensor(
      Uint8Array.from(values, (v) => (v ? 1 : 0)),
      dims,
      'bool',
    );
  for (const v of values) {
    if (!Number.isInteger(v) || v > 2 ** 31 - 1 || v < -(2 ** 31)) {
      throw new InputError(`input "${name}": value ${v} does not fit tfjs int32`);
    }
  }
  return tf.tensor(Int32Array.from(values), dims, 'int32');
}

const OUTPUT_TYPES = { float32: 'float32', int32: 'int32', bool: 'bool' } as const;

async function fromTfTensor(name: string, tensor: tf.Tensor): Promise<TensorLike> {
  const type = OUTPUT_TYPES[tensor.dtype as keyof typeof OUTPUT_TYPES];
  if (!type) throw new Error(`output "${name}" is ${tensor.dtype}, not a number tensor`);
  // A copy: on the CPU backend data() can be the tensor's own storage (a weight's, for a constant).
  const data = (await tensor.data()) as Float32Array | Int32Array | Uint8Array;
  return { type, data: data.slice(), dims: [...tensor.shape] };
}

function toList(result: tf.Tensor | tf.Tensor[] | tf.NamedTensorMap): tf.Tensor[] {
  if (result instanceof tf.Tensor) return [result];
  if (Array.isArray(result)) return result;
  throw new Error('the model returned outputs by name; expected a tensor or a list');
}

function totalBytes(files: TfjsFiles): number {
  let n = 0;
  for (const bytes of files.values()) n += bytes.length;
  return n;
}
