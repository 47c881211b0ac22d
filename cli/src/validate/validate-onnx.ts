import type { Release } from '@edgeship/protocol';
import { type ModelRunner, runGates, type ValidationInputs, type ValidationReport } from './gates.ts';
import { loadSession, runSequence } from './run-sequence.ts';

export interface ValidateOnnxOptions extends ValidationInputs {
  reference: Uint8Array;
  candidate: Uint8Array;
  /** How the candidate is quantized: it opens with the session options devices use for it. */
  candidateQuantization?: Release['quantization'];
}

/**
 * Runs the reference and the candidate in onnxruntime-node on the same frames and checks the
 * candidate against the budget (see runGates: a model that fails to load or run is a failed gate).
 */
export async function validateOnnx(opts: ValidateOnnxOptions): Promise<ValidationReport> {
  return runGates(
    { bytes: opts.reference.length, load: () => loadOnnxRunner(opts.reference) },
    {
      bytes: opts.candidate.length,
      load: () => loadOnnxRunner(opts.candidate, opts.candidateQuantization),
    },
    opts,
  );
}

/** Creates an onnxruntime session from bytes; rejects with onnxruntime's reason if it does not load. */
async function loadOnnxRunner(
  model: Uint8Array,
  quantization?: Release['quantization'],
): Promise<ModelRunner> {
  const { session, loadMs } = await loadSession(model, quantization);
  return {
    outputNames: session.outputNames,
    loadMs,
    runSequence: (frames, carry) => runSequence(session, frames, carry),
    release: () => session.release(),
  };
}
