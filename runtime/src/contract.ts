/**
 * `@edgeship/runtime/contract`: the release contract as the worker applies it to every inference
 * (input checks, preprocessing, the engine, postprocessing), for tools that must compute what a
 * device computes. The CLI's gates and drift profiles run through it, so a reference cannot skew
 * from the field by a second implementation. No worker, DOM or engine code in here.
 */
export type { Engine, EngineConfig } from './engines/engine.ts';
export { runWithContract, type TensorContract } from './engines/pipeline.ts';
export {
  ARRAY_FOR_DTYPE,
  applyPostprocessing,
  applyPreprocessing,
  type NamedTensors,
  type PostprocessStep,
  type PreprocessStep,
  type TensorArray,
  type TensorData,
  validateInputs,
} from './engines/tensor.ts';
