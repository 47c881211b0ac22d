import type { Release } from '@edgeship/protocol';
import type { Engine } from './engine.ts';
import { applyPostprocessing, applyPreprocessing, type NamedTensors, validateInputs } from './tensor.ts';

/** The parts of a release that decide how its inputs are checked and its outputs shaped. */
export type TensorContract = Pick<Release, 'inputs' | 'preprocessing' | 'postprocessing'>;

/**
 * One inference the way every caller gets it: inputs checked against the release's schema
 * (E_INPUT before the engine sees anything), the release's preprocessing, the engine, then the
 * release's postprocessing. One code path, so a page and a health check cannot disagree.
 */
export async function runWithContract(
  engine: Engine,
  contract: TensorContract,
  inputs: NamedTensors,
): Promise<NamedTensors> {
  validateInputs(contract.inputs, inputs);
  const raw = await engine.run(applyPreprocessing(contract.preprocessing, inputs));
  return applyPostprocessing(contract.postprocessing, raw);
}
