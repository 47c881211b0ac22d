import { InputError, MalformedError, type RecurrentPair } from '@edgeship/protocol';
import { elementCount, type NamedTensors, type TensorArray, type TensorData } from '../engines/tensor.ts';

/** Many steps of a stateful model in one worker round trip (see ModelHandle.runSequence). */
export interface SequenceRequest {
  /** Inputs that change every step, stacked on a new leading axis: dims [steps, ...the input's dims]. */
  steps: NamedTensors;
  /** Inputs that stay the same every step, and the first value of each carried input. */
  inputs: NamedTensors;
  /**
   * Output → input fed back into the next step (Silero VAD: { stateN: 'state' }). Default: the
   * release's signed recurrent pairs; given, it replaces them (a release that names none).
   */
  carry?: Record<string, string>;
}

export interface SequenceResult {
  /** Every step's outputs except the carried ones, stacked: dims [steps, ...the output's dims]. */
  outputs: NamedTensors;
  /** The carried values after the last step, under their input names: pass them as inputs to go on. */
  state: NamedTensors;
}

/**
 * Runs `step` once per step, slicing the stepped inputs and feeding each carried output back as
 * its input, so the recurrent state never leaves the worker between steps. Each step is an
 * ordinary inference (the contract checks every one), so the answers equal frame-by-frame runs.
 * `signed` are the release's recurrent pairs, carried unless the request names its own.
 */
export async function runSequence(
  request: SequenceRequest,
  step: (inputs: NamedTensors) => Promise<NamedTensors>,
  signed: readonly RecurrentPair[] = [],
): Promise<SequenceResult> {
  const { steps, inputs } = request;
  const carry = request.carry ?? Object.fromEntries(signed.map((p) => [p.output, p.input]));
  const count = stepCount(steps);
  for (const name of Object.keys(steps)) {
    if (name in inputs) throw new InputError(`"${name}" is given both per step and as a constant input`);
  }
  const state: NamedTensors = {};
  for (const [output, input] of Object.entries(carry)) {
    if (input in steps) throw new InputError(`carried input "${input}" cannot also be given per step`);
    const initial = inputs[input];
    if (!initial)
      throw new InputError(`carried input "${input}" (from "${output}") needs its first value in inputs`);
    state[input] = initial;
  }
  const collected = new Map<string, TensorData[]>();
  for (let i = 0; i < count; i++) {
    const outputs = await step({ ...inputs, ...state, ...sliceStep(steps, i) });
    for (const [output, input] of Object.entries(carry)) {
      const next = outputs[output];
      if (!next)
        throw new InputError(
          `carry names output "${output}"; the model gives ${Object.keys(outputs).join(', ')}`,
        );
      state[input] = next;
    }
    for (const [name, tensor] of Object.entries(outputs)) {
      if (name in carry) continue;
      const list = collected.get(name) ?? [];
      list.push(tensor);
      collected.set(name, list);
    }
  }
  const outputs: NamedTensors = {};
  for (const [name, list] of collected) outputs[name] = stack(name, list);
  return { outputs, state };
}

function stepCount(steps: NamedTensors): number {
  let count: number | undefined;
  for (const [name, tensor] of Object.entries(steps)) {
    const n = tensor.dims[0];
    if (n === undefined || !Number.isSafeInteger(n) || n < 0) {
      throw new InputError(`stepped input "${name}" needs a leading steps dimension, got [${tensor.dims}]`);
    }
    if (tensor.data.length !== elementCount(tensor.dims)) {
      throw new InputError(
        `stepped input "${name}" has ${tensor.data.length} elements, dims [${tensor.dims}] need ${elementCount(tensor.dims)}`,
      );
    }
    if (count !== undefined && n !== count) {
      throw new InputError(`stepped inputs disagree on the number of steps (${count} and ${n})`);
    }
    count = n;
  }
  if (count === undefined) throw new InputError('a sequence needs at least one stepped input');
  return count;
}

/** Step i of every stepped input: a view, not a copy (the engine copies into its own memory). */
function sliceStep(steps: NamedTensors, i: number): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, { data, dims }] of Object.entries(steps)) {
    const stepDims = dims.slice(1);
    const size = elementCount(stepDims);
    out[name] = { data: data.subarray(i * size, (i + 1) * size) as TensorArray, dims: stepDims };
  }
  return out;
}

function stack(name: string, list: TensorData[]): TensorData {
  const first = list[0]!;
  const size = first.data.length;
  for (const t of list) {
    if (t.data.length !== size || t.dims.join() !== first.dims.join()) {
      throw new MalformedError(`output "${name}" changed shape between steps; it cannot be stacked`);
    }
  }
  const Ctor = first.data.constructor as new (length: number) => TensorArray;
  const data = new Ctor(size * list.length);
  list.forEach((t, i) => {
    (data as { set(source: ArrayLike<number | bigint>, offset: number): void }).set(t.data, i * size);
  });
  return { data, dims: [list.length, ...first.dims] };
}
