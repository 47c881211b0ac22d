export { EdgeshipError } from '@edgeship/protocol';
export { type CreateRuntimeOptions, createRuntime, type Runtime } from './client.ts';
export type { Backend, EngineConfig } from './engines/engine.ts';
export type { NamedTensors, TensorData } from './engines/tensor.ts';
export type { CheckResult } from './update/updater.ts';
export { RUNTIME_VERSION } from './version.ts';
export type { ModelStatus, RuntimeConfig, RuntimeEvent, RuntimeStatus } from './worker/config.ts';
