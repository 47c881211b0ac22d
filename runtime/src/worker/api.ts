import type { NamedTensors } from '../engines/tensor.ts';
import type { CheckResult } from '../update/updater.ts';
import type { ModelStatus, RuntimeConfig, RuntimeEvent, RuntimeStatus } from './config.ts';

/** What the worker exposes over comlink; the main-thread client wraps it. */
export interface RuntimeWorkerApi {
  init(config: RuntimeConfig, onEvent: (event: RuntimeEvent) => void): Promise<{ deviceId: string }>;
  load(model: string): Promise<ModelStatus>;
  run(model: string, inputs: NamedTensors): Promise<NamedTensors>;
  checkForUpdates(): Promise<CheckResult>;
  status(): Promise<RuntimeStatus>;
  sendTelemetry(): Promise<{ sent: number; discarded: number; retryInMs?: number }>;
  dispose(): Promise<void>;
}
