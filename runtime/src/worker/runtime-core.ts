import { DisposedError, EdgeshipError, InputError } from '@edgeship/protocol';
import type { NamedTensors } from '../engines/tensor.ts';
import { type ModelPointers, ModelStore } from '../store/model-store.ts';
import { loadInstallKey } from '../telemetry/install-key.ts';
import { TrustStore } from '../update/trust-store.ts';
import type { CheckResult, Updater } from '../update/updater.ts';
import { Activation } from './activation.ts';
import { ActivationGuard, DEFAULT_GUARD } from './activation-guard.ts';
import type { ModelStatus, RuntimeConfig, RuntimeEvent, WorkerStatus } from './config.ts';
import { type FailureBook, failureBookFor } from './failure-book.ts';
import { FailureRecords } from './failure-records.ts';
import { type InferenceObservers, infer } from './inference.ts';
import type { ModelSlot } from './model-slot.ts';
import { pipelineTelemetry } from './pipeline-telemetry.ts';
import { checkedValue, type FeedbackResult, type OutcomeOptions, PredictionBook } from './predictions.ts';
import { runSequence, type SequenceRequest, type SequenceResult } from './sequence.ts';
import { ShadowLifecycle } from './shadow-lifecycle.ts';
import { LatencyBook, StatusReport } from './status-report.ts';
import { UpdateChecks, updaterFor } from './update-checks.ts';
import { openWorkerTelemetry, sendWorkerTelemetry, type WorkerTelemetry } from './worker-telemetry.ts';

interface Parts {
  store: ModelStore;
  book: FailureBook;
  activation: Activation;
  shadows: ShadowLifecycle;
  report: StatusReport;
  checks: UpdateChecks;
  telemetry: WorkerTelemetry | null;
  observers: InferenceObservers;
  predictions: PredictionBook;
}

/**
 * Everything the worker does, behind the comlink boundary, wired from its parts: offline-first
 * loading from the IndexedDB store, verified updates (update-checks.ts), health-checked
 * activation with rollback (activation.ts), shadow evaluation (shadow-lifecycle.ts), status and
 * telemetry.
 */
export class RuntimeCore {
  private readonly timers: ReturnType<typeof setInterval>[] = [];
  private disposed = false;

  private constructor(
    private readonly config: RuntimeConfig,
    private readonly parts: Parts,
    private readonly updater: Updater,
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
    const checks = new UpdateChecks(config, store, updater, book, activation, shadows, send, emit);
    const observers = { latency: report.latency, collector, shadows, guard };
    const predictions = new PredictionBook(collector);
    const parts = { store, book, activation, shadows, report, checks, telemetry, observers, predictions };
    const core = new RuntimeCore(config, parts, updater, deviceId);
    core.startTimers();
    return core;
  }

  /** Loads a model: the cached release at once (offline first); the first load downloads it. */
  async load(name: string): Promise<ModelStatus> {
    this.assertLive();
    const { store } = this.parts;
    this.updater.want(name);
    const pointers = await store.pointers(name);
    if (!pointers.active && !pointers.pending) {
      try {
        return await this.install(name);
      } finally {
        // Bytes the download left for this load and that it did not take are not kept.
        this.updater.awaitInstall(name, false);
        store.dropHandedOver(name);
      }
    }
    if (this.config.checkOnLoad !== false) {
      // Offline first: the cached release runs now; what the check finds runs from the next load.
      void this.checkForUpdates().catch(() => {});
    }
    return this.activate(name, pointers);
  }

  /** A first load: nothing stored yet, so the check it waits for downloads the release. */
  private async install(name: string): Promise<ModelStatus> {
    const { store, book } = this.parts;
    this.updater.awaitInstall(name, true);
    const checked = await this.checkForUpdates().catch(async (error: unknown) => {
      // Offline: a stored release whose environment failure is due is tried without the server.
      const due = await book.dueStoredRetry(name);
      if (!due) throw error;
      await store.setPending(name, due);
    });
    const pointers = await store.pointers(name);
    // A download the network cut off says so (its verified chunks are kept for the next check).
    const cut = checked?.failures.find((f) => f.release.startsWith(`${name}@`));
    if (cut && !pointers.active && !pointers.pending) {
      throw new EdgeshipError(
        cut.code,
        `${cut.release} could not be downloaded (${cut.message}); the next check resumes it`,
      );
    }
    return this.activate(name, pointers);
  }

  /** Runs the pending release (or the active one), unless it is what this worker runs already. */
  private async activate(name: string, pointers: ModelPointers): Promise<ModelStatus> {
    const { book, activation } = this.parts;
    const candidate = pointers.pending ?? pointers.active;
    if (!candidate) throw await book.nothingToLoad(name);
    if (activation.loaded(name)?.id !== candidate) await activation.switchTo(name, candidate);
    return this.modelStatus(name);
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
    const v = checkedValue(name, value);
    if (options.predictionId) return this.parts.predictions.outcomeFor(options.predictionId, name, v);
    const { activation } = this.parts;
    const names = options.model ? [options.model] : activation.names();
    const model = names.length === 1 ? activation.loaded(names[0]!) : undefined;
    if (!model) {
      throw new InputError(
        options.model
          ? `model ${options.model} is not loaded: load it before reporting its outcomes`
          : `${names.length} models are loaded: name the model (or a prediction id) of outcome ${name}`,
      );
    }
    const key = {
      model: model.release.model,
      version: model.release.version,
      backend: model.backend.chosen.backend,
      role: 'active' as const,
    };
    return { recorded: this.parts.telemetry?.collector.recordOutcome(key, name, v) ?? false };
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
    for (const timer of this.timers) clearInterval(timer);
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

  private startTimers(): void {
    // Update checks are scheduled by the page (check-schedule.ts), which sees its visibility.
    const sendEvery = this.config.telemetryIntervalMs ?? 60_000;
    if (this.parts.telemetry && sendEvery > 0)
      this.timers.push(setInterval(() => void this.sendTelemetry().catch(() => {}), sendEvery));
  }

  private assertLive(): void {
    if (this.disposed) throw new DisposedError('the runtime was disposed');
  }
}
