export { EdgeshipError } from '@edgeship/protocol';
export { type CreateRuntimeOptions, createRuntime, type Runtime } from './client.ts';
export type { Backend, EngineConfig } from './engines/engine.ts';
export type { NamedTensors, TensorArray, TensorData } from './engines/tensor.ts';
export type {
  CarryMap,
  ModelHandle,
  ModelSchema,
  ModelTypes,
  SequenceCall,
  SequenceOutcome,
  Tensor,
  Tensors,
} from './schema.ts';
export type { CheckResult } from './update/updater.ts';
export { RUNTIME_VERSION } from './version.ts';
export type {
  ModelStatus,
  RefusedRelease,
  RuntimeConfig,
  RuntimeEvent,
  RuntimeStatus,
} from './worker/config.ts';
