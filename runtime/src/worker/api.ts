import type { CheckResult } from '../update/updater.ts';
import type { ModelStatus, RuntimeConfig, RuntimeEvent, RuntimeStatus } from './config.ts';

/** What the worker exposes over comlink; the main-thread client wraps it. `run` has its own channel. */
export interface RuntimeWorkerApi {
  /** `inference` is the port `run` requests arrive on (see inference-channel.ts). */
  init(
    config: RuntimeConfig,
    onEvent: (event: RuntimeEvent) => void,
    inference: MessagePort,
  ): Promise<{ deviceId: string }>;
  load(model: string): Promise<ModelStatus>;
  checkForUpdates(): Promise<CheckResult>;
  status(): Promise<RuntimeStatus>;
  sendTelemetry(): Promise<{ sent: number; discarded: number; retryInMs?: number }>;
  dispose(): Promise<void>;
}
