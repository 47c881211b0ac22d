import type { Release } from '@edgeship/protocol';
import type { TensorContract } from '@edgeship/runtime/contract';
import { contractRunner } from './contract-runner.ts';
import { type ModelRunner, runGates, type ValidationInputs, type ValidationReport } from './gates.ts';
import { loadSession, toOrt } from './run-sequence.ts';

export interface ValidateOnnxOptions extends ValidationInputs {
  reference: Uint8Array;
  candidate: Uint8Array;
  /** How the candidate is quantized: it opens with the session options devices use for it. */
  candidateQuantization?: Release['quantization'];
}

/**
 * Runs the reference and the candidate in onnxruntime-node on the same frames and checks the
 * candidate against the budget (see runGates: a model that fails to load or run is a failed gate).
 * Both run through the release's contract when `contract` is given, as devices run them.
 */
export async function validateOnnx(opts: ValidateOnnxOptions): Promise<ValidationReport> {
  const contract = opts.contract ?? null;
  return runGates(
    { bytes: opts.reference.length, load: () => loadOnnxRunner(opts.reference, contract) },
    {
      bytes: opts.candidate.length,
      load: () => loadOnnxRunner(opts.candidate, contract, opts.candidateQuantization),
    },
    opts,
  );
}

/**
 * Creates an onnxruntime session from bytes, each frame run through `contract` (the runtime's
 * code); rejects with onnxruntime's reason if it does not load.
 */
export async function loadOnnxRunner(
  model: Uint8Array,
  contract: TensorContract | null,
  quantization?: Release['quantization'],
): Promise<ModelRunner> {
  const { session, loadMs } = await loadSession(model, quantization);
  return contractRunner(
    {
      inputNames: session.inputNames,
      outputNames: session.outputNames,
      loadMs,
      run: (feeds) => session.run(toOrt(feeds)),
      release: () => session.release(),
    },
    contract,
  );
}
