import { DisposedError } from '@edgeship/protocol';
import type { NamedTensors } from '../engines/tensor.ts';
import { ModelStore } from '../store/model-store.ts';
import { loadInstallKey } from '../telemetry/install-key.ts';
import { TrustStore } from '../update/trust-store.ts';
import type { CheckResult } from '../update/updater.ts';
import { Activation } from './activation.ts';
import { guardFor } from './activation-guard.ts';
import type { ModelStatus, RuntimeConfig, RuntimeEvent, WorkerStatus } from './config.ts';
import { failureBookFor } from './failure-book.ts';
import { FailureRecords } from './failure-records.ts';
import { Inference } from './inference.ts';
import { ModelLoader } from './model-loader.ts';
import type { ModelSlot } from './model-slot.ts';
import { pipelineTelemetry } from './pipeline-telemetry.ts';
import { type FeedbackResult, type OutcomeOptions, PredictionBook } from './predictions.ts';
import type { SequenceRequest, SequenceResult } from './sequence.ts';
import { ShadowLifecycle } from './shadow-lifecycle.ts';
import { LatencyBook, StatusReport } from './status-report.ts';
import { startTelemetryTimer } from './telemetry-timer.ts';
import { UpdateChecks, updaterFor } from './update-checks.ts';
import { openWorkerTelemetry, sendWorkerTelemetry } from './worker-telemetry.ts';

/**
 * Whether this browser writes packs. Firefox ESR 153 timed out two download tests with packs
 * (a download resumed after its tab closed; a release sharing chunks with the installed one) in
 * one of two suite runs, where IndexedDB values never did: until that is understood, Gecko keeps
 * chunk bytes as IndexedDB values (and still reads any pack).
 */
function packsWork(): boolean {
  return !/\bFirefox\//.test(globalThis.navigator?.userAgent ?? '');
}

/**
 * Builds the worker's parts from the config. `check` is the core's checkForUpdates, so that a
 * load's checks too are refused once the core is disposed.
 */
async function wire(
  config: RuntimeConfig,
  emit: (event: RuntimeEvent) => void,
  check: () => Promise<CheckResult>,
) {
  const prefix = config.storagePrefix ?? 'edgeship';
  // Chunk bytes in OPFS packs (one file per release file: a cold start reads it in one call),
  // written by a nested copy of this worker script so the downloads' thread only fetches and hashes.
  const store = await ModelStore.open(`${prefix}-models`, {
    packs: packsWork(),
    packWriterUrl: globalThis.location.href,
  });
  // The install's key: its public half is the device id (rollout buckets, telemetry).
  const installKey = await loadInstallKey(store);
  const deviceId = installKey.deviceId;
  const trust = new TrustStore(store, config.trustedRoot, { app: config.app, channel: config.channel });
  const telemetry = config.telemetry === false ? null : await openWorkerTelemetry(config, prefix, installKey);
  const collector = telemetry?.collector;
  const pipeline = collector && pipelineTelemetry(collector, store, config, () => activation);
  const backendOf = (model: string) => activation.loaded(model)?.backend.chosen.backend;
  const updater = updaterFor(config, store, trust, deviceId, emit, pipeline, backendOf);
  const book = failureBookFor(config, store, () => trust.newestManifestVersion());
  // A new runtime version or new options make environment failures due at once.
  await book.syncRefused();
  const failures = new FailureRecords(book, store, config, collector);
  const guard = guardFor(config, (regression) => void activation.leave(regression).catch(() => {}));
  const activation = new Activation(store, config, book, failures, collector, emit, guard);
  const shadows = new ShadowLifecycle(activation, failures, collector, config.shadowSampleRate ?? 0.1);
  const report = new StatusReport(deviceId, store, activation, shadows, book, new LatencyBook());
  const releases = { config, store, updater, book, activation };
  const send = () => sendWorkerTelemetry(telemetry);
  const checks = new UpdateChecks(releases, shadows, send, emit);
  const predictions = new PredictionBook(collector);
  const inference = new Inference({ latency: report.latency, collector, shadows, guard }, predictions);
  const loader = new ModelLoader(releases, check, (n) => report.model(n));
  const stopSending = startTelemetryTimer(telemetry, config.telemetryIntervalMs);
  const close = async () => {
    stopSending();
    // Whatever was observed becomes durable before the worker goes away.
    await telemetry?.reporter.seal().catch(() => {});
    await activation.dispose();
    await shadows.dispose();
    store.close();
  };
  return { deviceId, book, activation, report, checks, loader, inference, predictions, send, close };
}

/**
 * Everything the worker does, behind the comlink boundary, wired from its parts and delegated to
 * them: offline-first loading (model-loader.ts), verified updates (update-checks.ts),
 * health-checked activation with rollback (activation.ts), shadow evaluation
 * (shadow-lifecycle.ts), inference (inference.ts), predictions and outcomes (predictions.ts),
 * status (status-report.ts) and telemetry (worker-telemetry.ts). What stays here: the wiring,
 * and refusing calls once disposed.
 */
export class RuntimeCore {
  private disposed = false;
  readonly deviceId: string;

  private constructor(private readonly parts: Awaited<ReturnType<typeof wire>>) {
    this.deviceId = parts.deviceId;
  }

  static async create(config: RuntimeConfig, emit: (event: RuntimeEvent) => void): Promise<RuntimeCore> {
    const core: RuntimeCore = new RuntimeCore(await wire(config, emit, () => core.checkForUpdates()));
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
    return this.parts.inference.run(slot, name, inputs);
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

  /** Many steps in one call, the carried state kept in the worker between them (inference.ts). */
  async runSequence(name: string, request: SequenceRequest): Promise<SequenceResult> {
    return this.parts.inference.sequence(await this.ready(name), name, request);
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
    return this.parts.send();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.parts.close();
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
