import { type DType, InputError } from '@edgeship/protocol';
import {
  type Engine,
  type NamedTensors,
  runWithContract,
  type TensorArray,
  type TensorContract,
} from '@edgeship/runtime/contract';
import type * as ort from 'onnxruntime-node';
import type { RunOutputs } from './compare.ts';
import type { ModelRunner } from './gates.ts';
import type { Carry, Feeds, TensorLike } from './run-sequence.ts';

/** A loaded model that runs one frame, raw: the engine's own inputs in, its own outputs out. */
export interface FrameModel {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Time to create the session or load the model, in ms. */
  readonly loadMs: number;
  run(feeds: Feeds): Promise<RunOutputs>;
  release(): Promise<void>;
}

/**
 * A model as devices run it: every frame goes through the runtime's own `runWithContract` (the
 * release's input checks, preprocessing, the engine, postprocessing), imported from
 * `@edgeship/runtime/contract`, so the gates and the drift reference see what the field computes.
 * Carried state is the postprocessed output fed back as the next frame's input, as the runtime's
 * sequence call does. `feeds` are each frame's inputs as the caller gave them (carried state in):
 * what an input feature is reduced from on a device. With no contract (a bare model file under
 * test) frames run as they are.
 */
export function contractRunner(model: FrameModel, contract: TensorContract | null): ModelRunner {
  const dtypes = new Map((contract?.inputs ?? []).map((spec) => [spec.name, spec.dtype]));
  const engine: Engine = {
    config: { backend: 'cpu' },
    inputNames: model.inputNames,
    outputNames: model.outputNames,
    run: async (inputs) => plain(await model.run(typed(inputs, dtypes))),
    dispose: () => model.release(),
  };
  const infer = async (feeds: Feeds): Promise<RunOutputs> =>
    contract ? typed(await runWithContract(engine, contract, plain(feeds)), dtypes) : model.run(feeds);
  return {
    outputNames: model.outputNames,
    loadMs: model.loadMs,
    async runSequence(frames: readonly Feeds[], carry: Carry = {}) {
      if (frames.length === 0) throw new InputError('no input frames to run');
      for (const [output, input] of Object.entries(carry)) {
        if (!model.outputNames.includes(output))
          throw new InputError(`carry names output "${output}"; the model has ${list(model.outputNames)}`);
        if (!model.inputNames.includes(input))
          throw new InputError(`carry names input "${input}"; the model has ${list(model.inputNames)}`);
      }
      // The first run allocates and plans (either engine): kept out of the timing.
      await infer(frames[0]!);
      const feeds: Feeds[] = [];
      const outputs: RunOutputs[] = [];
      let totalMs = 0;
      let carried: Feeds = {};
      for (const frame of frames) {
        const feed = { ...frame, ...carried };
        const start = performance.now();
        const out = await infer(feed);
        totalMs += performance.now() - start;
        feeds.push(feed);
        outputs.push(out);
        carried = {};
        for (const [output, input] of Object.entries(carry)) carried[input] = out[output]!;
      }
      return { feeds, outputs, meanMs: totalMs / frames.length };
    },
    release: () => model.release(),
  };
}

/** The runtime's tensors: a typed array and dims (the dtype is the release's to say). */
function plain(tensors: Record<string, TensorLike>): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, t] of Object.entries(tensors)) {
    out[name] = { data: t.data as TensorArray, dims: [...t.dims] };
  }
  return out;
}

const TYPE_OF_ARRAY: ReadonlyArray<[new (n: number) => TensorArray, ort.Tensor.Type]> = [
  [Float32Array, 'float32'],
  [Int32Array, 'int32'],
  [BigInt64Array, 'int64'],
  [Int8Array, 'int8'],
  [Uint8Array, 'uint8'],
  [Uint16Array, 'float16'],
];

/** Back to the engines' tensors: a declared input's dtype, else the one its array carries. */
function typed(tensors: NamedTensors, dtypes: ReadonlyMap<string, DType>): Record<string, TensorLike> {
  const out: Record<string, TensorLike> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const type =
      (dtypes.get(name) as ort.Tensor.Type | undefined) ??
      TYPE_OF_ARRAY.find(([ctor]) => t.data instanceof ctor)?.[1] ??
      'float32';
    out[name] = { type, data: t.data as ort.Tensor.DataType, dims: t.dims };
  }
  return out;
}

function list(names: readonly string[]): string {
  return names.map((n) => `"${n}"`).join(', ');
}
