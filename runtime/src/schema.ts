import type { TensorArray } from './engines/tensor.ts';
import type { ModelStatus } from './worker/config.ts';
import type { FeedbackResult } from './worker/predictions.ts';

/**
 * Types for the models an app runs, as idb's DBSchema types its stores: extend ModelSchema, name
 * each model and the typed array each of its tensors travels in, and pass it to
 * `createRuntime<MyModels>(…)`. Model names, inputs and outputs are then checked end to end:
 *
 * ```ts
 * interface MyModels extends ModelSchema {
 *   vad: {
 *     inputs: { input: Float32Array; state: Float32Array; sr: BigInt64Array };
 *     outputs: { output: Float32Array; stateN: Float32Array };
 *     recurrent: { stateN: 'state' }; // the release's signed pairs: runSequence carries them
 *   };
 * }
 * ```
 *
 * The worker still checks every call against the release's signed contract (E_INPUT): the types
 * are the app's promise, the contract is the release's.
 */
export interface ModelSchema {
  [model: string]: ModelTypes;
}

/** One model's tensors by name: float32 → Float32Array, int64 → BigInt64Array, float16 → Uint16Array, … */
export interface ModelTypes {
  inputs: Record<string, TensorArray>;
  outputs: Record<string, TensorArray>;
  /**
   * The recurrent pairs the release signs, output → input (Silero VAD: { stateN: 'state' }), so
   * the types of a sequence call without `carry` know which outputs come back as state.
   */
  recurrent?: Record<string, string>;
}

/** A tensor whose data is `T`. */
export interface Tensor<T extends TensorArray = TensorArray> {
  data: T;
  dims: number[];
}

/** Named tensors, each with its own array type. */
export type Tensors<T> = { [K in keyof T]: Tensor<T[K] extends TensorArray ? T[K] : TensorArray> };

// A schema's declared names, without its index signature (as idb's KnownKeys).
type KnownKeys<T> = keyof {
  [K in keyof T as string extends K ? never : number extends K ? never : K]: T[K];
};

/** The model names of schema `S`; any string without a schema. */
export type ModelName<S> = unknown extends S ? string : KnownKeys<S> & string;

type EntryOf<S, M> = unknown extends S ? ModelTypes : M extends keyof S ? S[M] : ModelTypes;
export type InputsOf<S, M> = EntryOf<S, M> extends { inputs: infer I } ? I : never;
export type OutputsOf<S, M> = EntryOf<S, M> extends { outputs: infer O } ? O : never;
/** The signed recurrent pairs the schema declares for the model, or undefined when it declares none. */
export type RecurrentOf<S, M> = EntryOf<S, M> extends { recurrent: infer R } ? R : undefined;

/** Output → the input it is fed back into at the next step. */
export type CarryMap<I, O> = { [K in keyof O]?: keyof I & string };

/** Declared pairs that fit the model's inputs and outputs, else undefined (not known). */
export type Carried<I, O, R> = R extends CarryMap<I, O> ? R : undefined;

/** A sequence call (see ModelHandle.runSequence). */
export interface SequenceCall<I, O, C extends CarryMap<I, O> | undefined> {
  /** Inputs that change every step, stacked on a new leading axis: dims [steps, ...the input's dims]. */
  steps: Partial<Tensors<I>>;
  /** Inputs that stay the same every step, and the first value of each carried input. */
  inputs: Partial<Tensors<I>>;
  /**
   * Output → input fed back into the next step, e.g. Silero VAD's { stateN: 'state' }. Default:
   * the pairs the release signs (`recurrent` in its contract); given, it replaces them.
   */
  carry?: C;
}

/** What a sequence gives back; with pairs the types do not know (C undefined), every tensor may be absent. */
export type SequenceOutcome<I, O, C> = [C] extends [undefined]
  ? { outputs: Partial<Tensors<O>>; state: Partial<Tensors<I>> }
  : {
      /** Every step's outputs except the carried ones, stacked: dims [steps, ...the output's dims]. */
      outputs: Tensors<string extends keyof C ? O : Omit<O, keyof C>>;
      /** The carried values after the last step, under their input names: pass them in `inputs` to go on. */
      state: Tensors<Pick<I, Extract<C[keyof C], keyof I>>>;
    };

/**
 * A loaded model: `const vad = await runtime.load('vad'); await vad.run(inputs)`. Calls cross to
 * the worker; inputs are transferred (the caller's arrays are detached), outputs come back
 * transferred. The handle follows the model, not one release: after an activation it runs the new one.
 */
export interface ModelHandle<I = ModelTypes['inputs'], O = ModelTypes['outputs'], R = undefined> {
  readonly name: string;
  /**
   * One inference: inputs checked against the release's contract, pre/postprocessing, the model.
   * The outputs carry a `predictionId` (not enumerable) for `feedback` and `outcome`.
   */
  run(inputs: Tensors<I>): Promise<Predicted<Tensors<O>>>;
  /**
   * Many steps of a stateful model in one round trip to the worker, each carried output fed back
   * as its input in the worker: the same answers as step-by-step `run` calls, one message each way.
   * Carried: the release's signed recurrent pairs, or the call's `carry`.
   */
  runSequence<const C extends CarryMap<I, O> | undefined = Carried<I, O, R>>(
    call: SequenceCall<I, O, C>,
  ): Promise<SequenceOutcome<I, O, C>>;
  /** Active, pending and loaded release, backend report, refused releases of this model. */
  status(): Promise<ModelStatus>;
  /** Runtime.feedback. */
  feedback(predictionId: string, truth: { label: string | number | boolean }): Promise<FeedbackResult>;
  /** Runtime.outcome, for this model's loaded release (or the release of `predictionId`). */
  outcome(
    name: string,
    value: number | boolean,
    options?: { predictionId?: string },
  ): Promise<FeedbackResult>;
}

/**
 * A run's outputs with the id of the prediction: `feedback(outputs.predictionId, { label })`.
 * The id is not enumerable, so `Object.keys(outputs)` still lists only the tensors. Ids live in
 * the worker's memory (the last 10,000 runs): feedback after that, or after a reload, is not counted.
 */
export type Predicted<T> = T & { readonly predictionId: string };
