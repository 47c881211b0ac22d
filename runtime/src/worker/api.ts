import type { CheckResult } from '../update/updater.ts';
import type { ModelStatus, RuntimeConfig, RuntimeEvent, WorkerStatus } from './config.ts';

/** What the worker exposes over comlink; the main-thread client wraps it. `run` and `runSequence` have their own channel. */
export interface RuntimeWorkerApi {
  /** `inference` is the port `run` requests arrive on (see inference-channel.ts). */
  init(
    config: RuntimeConfig,
    onEvent: (event: RuntimeEvent) => void,
    inference: MessagePort,
  ): Promise<{ deviceId: string }>;
  load(model: string): Promise<ModelStatus>;
  checkForUpdates(): Promise<CheckResult>;
  status(): Promise<WorkerStatus>;
  /** One model's status (a model handle's status()). */
  modelStatus(model: string): Promise<ModelStatus>;
  /** Forgets the model's failed releases, so the next load or check tries them again. */
  reset(model: string): Promise<ModelStatus>;
  sendTelemetry(): Promise<{ sent: number; discarded: number; retryInMs?: number }>;
  dispose(): Promise<void>;
}
