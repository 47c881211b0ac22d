import { DisposedError } from '@edgeship/protocol';
import type { NamedTensors } from '../engines/tensor.ts';
import { ModelStore } from '../store/model-store.ts';
import { loadInstallKey } from '../telemetry/install-key.ts';
import { TrustStore } from '../update/trust-store.ts';
import type { CheckResult } from '../update/updater.ts';
import { Activation } from './activation.ts';
import { ActivationGuard, DEFAULT_GUARD } from './activation-guard.ts';
import type { ModelStatus, RuntimeConfig, RuntimeEvent, WorkerStatus } from './config.ts';
import { type FailureBook, failureBookFor } from './failure-book.ts';
import { FailureRecords } from './failure-records.ts';
import { type InferenceObservers, infer } from './inference.ts';
import { ModelLoader } from './model-loader.ts';
import type { ModelSlot } from './model-slot.ts';
import { pipelineTelemetry } from './pipeline-telemetry.ts';
import { type FeedbackResult, type OutcomeOptions, PredictionBook } from './predictions.ts';
import { runSequence, type SequenceRequest, type SequenceResult } from './sequence.ts';
import { ShadowLifecycle } from './shadow-lifecycle.ts';
import { LatencyBook, StatusReport } from './status-report.ts';
import { startTelemetryTimer } from './telemetry-timer.ts';
import { UpdateChecks, updaterFor } from './update-checks.ts';
import { openWorkerTelemetry, sendWorkerTelemetry, type WorkerTelemetry } from './worker-telemetry.ts';

interface Parts {
  store: ModelStore;
  book: FailureBook;
  activation: Activation;
  shadows: ShadowLifecycle;
  report: StatusReport;
  checks: UpdateChecks;
  loader: ModelLoader;
  telemetry: WorkerTelemetry | null;
  observers: InferenceObservers;
  predictions: PredictionBook;
}

/**
 * Everything the worker does, behind the comlink boundary, wired from its parts and delegated to
 * them: offline-first loading (model-loader.ts), verified updates (update-checks.ts),
 * health-checked activation with rollback (activation.ts), shadow evaluation
 * (shadow-lifecycle.ts), predictions and outcomes (predictions.ts), status (status-report.ts) and
 * telemetry (worker-telemetry.ts). What stays here: the wiring, and refusing calls once disposed.
 */
export class RuntimeCore {
  private disposed = false;

  private constructor(
    private readonly parts: Parts,
    private readonly stopSending: () => void,
    readonly deviceId: string,
  ) {}

  static async create(config: RuntimeConfig, emit: (event: RuntimeEvent) => void): Promise<RuntimeCore> {
    const prefix = config.storagePrefix ?? 'edgeship';
    const store = await ModelStore.open(`${prefix}-models`);
    // The install's key: its public half is the device id (rollout buckets, telemetry).
    const installKey = await loadInstallKey(store);
    const deviceId = installKey.deviceId;
    const trust = new TrustStore(store, config.trustedRoot, { app: config.app, channel: config.channel });
    const telemetry =
      config.telemetry === false ? null : await openWorkerTelemetry(config, prefix, installKey);
    const collector = telemetry?.collector;
    const pipeline = collector && pipelineTelemetry(collector, store, config, () => activation);
    const updater = updaterFor(
      config,
      store,
      trust,
      deviceId,
      emit,
      pipeline,
      (model) => activation.loaded(model)?.backend.chosen.backend,
    );
    const book = failureBookFor(config, store, () => trust.newestManifestVersion());
    // A new runtime version or new options make environment failures due at once.
    await book.syncRefused();
    const failures = new FailureRecords(book, store, config, collector);
    const guard =
      config.activationGuard === false
        ? null
        : new ActivationGuard({ ...DEFAULT_GUARD, ...config.activationGuard }, (regression) => {
            void activation.leave(regression).catch(() => {});
          });
    const activation = new Activation(store, config, book, failures, collector, emit, guard);
    const shadows = new ShadowLifecycle(activation, failures, collector, config.shadowSampleRate ?? 0.1);
    const report = new StatusReport(deviceId, store, activation, shadows, book, new LatencyBook());
    const send = () => sendWorkerTelemetry(telemetry);
    const releases = { config, store, updater, book, activation };
    const checks = new UpdateChecks(releases, shadows, send, emit);
    const observers = { latency: report.latency, collector, shadows, guard };
    const predictions = new PredictionBook(collector);
    const parts = { store, book, activation, shadows, report, checks, telemetry, observers, predictions };
    // A load's checks go through the core, so that they too are refused once it is disposed.
    const check = (): Promise<CheckResult> => core.checkForUpdates();
    const loader = new ModelLoader(releases, check, (n) => report.model(n));
    const stopSending = startTelemetryTimer(telemetry, config.telemetryIntervalMs);
    const core = new RuntimeCore({ ...parts, loader }, stopSending, deviceId);
    return core;
  }

  /** Loads a model: the cached release at once (offline first); the first load downloads it. */
  async load(name: string): Promise<ModelStatus> {
    this.assertLive();
    return this.parts.loader.load(name);
  }

  /** One inference, with the id `feedback` and `outcome` name it by. */
  async run(name: string, inputs: NamedTensors): Promise<{ outputs: NamedTensors; predictionId: string }> {
    // The hot path: a loaded model skips ready()'s extra await.
    const slot = (!this.disposed && this.parts.activation.slot(name)) || (await this.ready(name));
    return slot.run(async (model) => {
      const outputs = await infer(this.parts.observers, name, model, inputs);
      const predictionId = this.parts.predictions.add(model.release, model.backend.chosen.backend, outputs);
      return { outputs, predictionId };
    });
  }

  /** The app's label for a prediction, counted for the release that made it (predictions.ts). */
  feedback(predictionId: string, label: string | number | boolean): FeedbackResult {
    this.assertLive();
    return this.parts.predictions.feedback(predictionId, label);
  }

  /**
   * A named outcome (`accepted`, `converted`): for the release that made `options.predictionId`,
   * else for the loaded release of `options.model` (or of the one model loaded).
   */
  outcome(name: string, value: number | boolean, options: OutcomeOptions = {}): FeedbackResult {
    this.assertLive();
    return this.parts.predictions.outcome(this.parts.activation, name, value, options);
  }

  /**
   * Many steps in one call, the carried state kept here between them. The whole sequence holds
   * the model's queue, so an activation cannot swap the engine between two steps.
   */
  async runSequence(name: string, request: SequenceRequest): Promise<SequenceResult> {
    const slot = await this.ready(name);
    return slot.run((model) =>
      runSequence(
        request,
        (inputs) => infer(this.parts.observers, name, model, inputs),
        model.release.recurrent,
      ),
    );
  }

  /** Forgets the model's failed releases: the next load or check tries them again. */
  async reset(name: string): Promise<ModelStatus> {
    this.assertLive();
    await this.parts.book.reset(name);
    return this.modelStatus(name);
  }

  /** Checks the server now (one check at a time); with immediate activation, switches at once. */
  async checkForUpdates(): Promise<CheckResult> {
    this.assertLive();
    return this.parts.checks.check();
  }

  status(): Promise<WorkerStatus> {
    return this.parts.report.status(this.parts.checks.lastCheck);
  }

  modelStatus(name: string): Promise<ModelStatus> {
    return this.parts.report.model(name);
  }

  /** Seals what was observed into the outbox and sends what is queued. */
  sendTelemetry() {
    return sendWorkerTelemetry(this.parts.telemetry);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.stopSending();
    // Whatever was observed becomes durable before the worker goes away.
    await this.parts.telemetry?.reporter.seal().catch(() => {});
    await this.parts.activation.dispose();
    await this.parts.shadows.dispose();
    this.parts.store.close();
  }

  private async ready(name: string): Promise<ModelSlot> {
    this.assertLive();
    if (!this.parts.activation.slot(name)) await this.load(name);
    return this.parts.activation.slot(name)!;
  }

  private assertLive(): void {
    if (this.disposed) throw new DisposedError('the runtime was disposed');
  }
}
