import { onnxSessionOptions, type Release } from '@edgeship/protocol';
import * as ort from 'onnxruntime-node';
import { contractRunner } from './contract-runner.ts';

/** What a caller may pass as a tensor: an ort.Tensor, or anything shaped like one. */
export interface TensorLike {
  type: ort.Tensor.Type;
  data: ort.Tensor.DataType;
  dims: readonly number[];
}

export type Feeds = Record<string, TensorLike>;
export type Outputs = Record<string, ort.Tensor>;

/**
 * Recurrent state to carry from one frame to the next: output name → input name. Silero VAD
 * needs `{ stateN: 'state' }`; the first frame's own `state` is the initial one.
 */
export type Carry = Record<string, string>;

export interface LoadedSession {
  session: ort.InferenceSession;
  loadMs: number;
}

/**
 * Creates a session from bytes with the options devices use for a release quantized this way;
 * rejects with onnxruntime's reason if the model does not load.
 */
export async function loadSession(
  model: Uint8Array,
  quantization: Release['quantization'] = { method: 'none' },
): Promise<LoadedSession> {
  const start = performance.now();
  const session = await ort.InferenceSession.create(model, onnxSessionOptions(quantization));
  return { session, loadMs: performance.now() - start };
}

export interface SequenceRun {
  /** The feeds each frame actually ran with (carried state included). */
  feeds: Feeds[];
  outputs: Outputs[];
  /** Mean wall time of one inference, after one warm-up run. */
  meanMs: number;
}

/**
 * Runs frames in order on a bare session (no release contract), feeding carried outputs back in
 * as the next frame's inputs: contractRunner's one sequence loop, for benches and session tests.
 */
export async function runSequence(
  session: ort.InferenceSession,
  frames: readonly Feeds[],
  carry: Carry = {},
): Promise<SequenceRun> {
  const runner = contractRunner(
    {
      inputNames: session.inputNames,
      outputNames: session.outputNames,
      loadMs: 0,
      run: (feeds) => session.run(toOrt(feeds)),
      release: async () => {},
    },
    null,
  );
  const run = await runner.runSequence(frames, carry);
  return { feeds: run.feeds ?? [], outputs: run.outputs as Outputs[], meanMs: run.meanMs };
}

/** A tensor's values as numbers (int64 outputs come back as BigInt64Array). */
export function numbersOf(tensor: TensorLike): Float64Array {
  const data = tensor.data as ArrayLike<number | bigint>;
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  return out;
}

/** Feeds as onnxruntime-node's own tensors. */
export function toOrt(frame: Feeds): Outputs {
  const out: Outputs = {};
  for (const [name, t] of Object.entries(frame)) {
    // Re-wrapped rather than trusted: a Tensor from onnxruntime-web is another class.
    out[name] = new ort.Tensor(t.type, t.data as never, t.dims);
  }
  return out;
}
