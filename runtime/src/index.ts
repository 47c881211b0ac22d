// The error classes apps branch on (each carries a stable `code`): from the zod-free subpath, so
// the main-thread entry carries no schemas.
export {
  codeOf,
  DisposedError,
  DownloadError,
  EdgeshipError,
  ERROR_CODES,
  type ErrorCode,
  ExpiredError,
  HashMismatchError,
  HttpStatusError,
  InputError,
  LengthMismatchError,
  LifetimeError,
  MalformedError,
  NetworkError,
  NotFoundError,
  PublisherSignatureError,
  QuotaError,
  RollbackError,
  SignatureError,
  StalledDownloadError,
  TimeoutError,
  UnknownKeyError,
  UnsupportedRuntimeError,
  VerificationError,
  VersionConflictError,
  WrongTargetError,
} from '@edgeship/protocol/errors';
export { type CreateRuntimeOptions, createRuntime, type Runtime } from './client.ts';
export { EngineStartTimeoutError } from './engine-start.ts';
export {
  type Backend,
  BackendUnavailableError,
  type EngineConfig,
  type FallbackCode,
  type FallbackReason,
  NoBackendError,
} from './engines/engine.ts';
export type { OrtWasmPaths } from './engines/ort-assets.ts';
export type { NamedTensors, TensorArray, TensorData } from './engines/tensor.ts';
export type {
  CarryMap,
  ModelHandle,
  ModelSchema,
  ModelTypes,
  Predicted,
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
export type { FeedbackResult, OutcomeOptions } from './worker/predictions.ts';
