import type { CheckResult } from '../update/updater.ts';
import type { ModelStatus, RuntimeConfig, RuntimeEvent, WorkerStatus } from './config.ts';
import type { FeedbackResult, OutcomeOptions } from './predictions.ts';

/**
 * What the worker exposes over comlink, on the MessagePort the page's first message hands over;
 * the main-thread client wraps it. `run` and `runSequence` use the worker's own channel
 * (inference-channel.ts).
 */
export interface RuntimeWorkerApi {
  init(config: RuntimeConfig, onEvent: (event: RuntimeEvent) => void): Promise<{ deviceId: string }>;
  load(model: string): Promise<ModelStatus>;
  checkForUpdates(): Promise<CheckResult>;
  status(): Promise<WorkerStatus>;
  /** One model's status (a model handle's status()). */
  modelStatus(model: string): Promise<ModelStatus>;
  /** Forgets the model's failed releases, so the next load or check tries them again. */
  reset(model: string): Promise<ModelStatus>;
  /** Ground truth for one prediction (predictions.ts). */
  feedback(predictionId: string, label: string | number | boolean): Promise<FeedbackResult>;
  outcome(name: string, value: number | boolean, options?: OutcomeOptions): Promise<FeedbackResult>;
  sendTelemetry(): Promise<{ sent: number; discarded: number; retryInMs?: number }>;
  dispose(): Promise<void>;
}
