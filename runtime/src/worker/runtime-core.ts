import {
  EdgeshipError,
  type Histogram,
  histogramCount,
  histogramQuantile,
  type Release,
  recordValue,
} from '@edgeship/protocol';
import type { Engine } from '../engines/engine.ts';
import { defaultOrtWasmPaths } from '../engines/ort-assets.ts';
import { runWithContract } from '../engines/pipeline.ts';
import type { NamedTensors } from '../engines/tensor.ts';
import { ModelStore } from '../store/model-store.ts';
import { TelemetryCollector } from '../telemetry/collector.ts';
import { loadInstallKey } from '../telemetry/install-key.ts';
import { TelemetryOutbox } from '../telemetry/outbox.ts';
import { TelemetryReporter } from '../telemetry/reporter.ts';
import { TelemetrySender } from '../telemetry/sender.ts';
import { TrustStore } from '../update/trust-store.ts';
import { type CheckResult, Updater } from '../update/updater.ts';
import { RUNTIME_VERSION } from '../version.ts';
import type {
  BackendReport,
  LastCheck,
  ModelStatus,
  RuntimeConfig,
  RuntimeEvent,
  WorkerStatus,
} from './config.ts';
import { FailureBook } from './failure-book.ts';
import { activationFingerprint, DEFAULT_RETRY } from './failure-policy.ts';
import { openRelease } from './open-release.ts';
import { runSequence, type SequenceRequest, type SequenceResult } from './sequence.ts';
import { compareForShadow } from './shadow.ts';

interface LoadedModel {
  id: string;
  release: Release;
  engine: Engine;
  backend: BackendReport;
  /** Runs of one engine are serialised: an ORT session is not re-entrant. */
  queue: Promise<unknown>;
}

/**
 * Everything the worker does, behind the comlink boundary: offline-first loading from the
 * IndexedDB store, verified updates, health-checked activation with rollback to the last known
 * good release, shadow evaluation and telemetry.
 */
export class RuntimeCore {
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly shadows = new Map<string, LoadedModel>();
  private readonly latency = new Map<string, Histogram>();
  private lastCheck: LastCheck | null = null;
  private checking: Promise<CheckResult> | null = null;
  private readonly timers: ReturnType<typeof setInterval>[] = [];
  private disposed = false;

  private constructor(
    private readonly config: RuntimeConfig,
    private readonly store: ModelStore,
    private readonly updater: Updater,
    private readonly failures: FailureBook,
    readonly deviceId: string,
    private readonly telemetry: {
      collector: TelemetryCollector;
      reporter: TelemetryReporter;
      sender: TelemetrySender;
    } | null,
    private readonly emit: (event: RuntimeEvent) => void,
  ) {}

  static async create(config: RuntimeConfig, emit: (event: RuntimeEvent) => void): Promise<RuntimeCore> {
    const prefix = config.storagePrefix ?? 'edgeship';
    const store = await ModelStore.open(`${prefix}-models`);
    // The install's key: its public half is the device id (rollout buckets, telemetry).
    const installKey = await loadInstallKey(store);
    const deviceId = installKey.deviceId;
    const trust = new TrustStore(store, config.trustedRoot, { app: config.app, channel: config.channel });
    const updater = new Updater(
      store,
      trust,
      {
        server: config.server,
        app: config.app,
        channel: config.channel,
        deviceId,
        runtimeVersion: RUNTIME_VERSION,
        checkDeadlineMs: config.retrieval?.checkDeadlineMs,
        timeoutMs: config.retrieval?.manifestTimeoutMs,
        firstByteMs: config.retrieval?.firstByteMs,
        minBytesPerSecond: config.retrieval?.minBytesPerSecond,
        models: config.models,
      },
      (event) => emit(event),
    );
    let telemetry = null;
    if (config.telemetry !== false) {
      const collector = new TelemetryCollector();
      const outbox = await TelemetryOutbox.open(`${prefix}-telemetry`);
      telemetry = {
        collector,
        reporter: new TelemetryReporter(collector, outbox, {
          deviceId,
          app: config.app,
          channel: config.channel,
          runtimeVersion: RUNTIME_VERSION,
        }),
        sender: new TelemetrySender(outbox, {
          endpoint: `${config.server.replace(/\/$/, '')}/v1/telemetry`,
          installKey: installKey.privateKey,
        }),
      };
    }
    const failures = new FailureBook(
      store,
      activationFingerprint({
        runtimeVersion: RUNTIME_VERSION,
        wasmPaths: config.wasmPaths ?? defaultOrtWasmPaths(),
        tfjsWasmPaths: config.tfjsWasmPaths,
        backend: config.backend,
        crossOriginIsolated: globalThis.crossOriginIsolated === true,
        userAgent: globalThis.navigator?.userAgent ?? '',
      }),
      { ...DEFAULT_RETRY, ...config.activationRetry },
      () => trust.newestManifestVersion(),
    );
    // A new runtime version or new options make environment failures due at once.
    await failures.syncRefused();
    const core = new RuntimeCore(config, store, updater, failures, deviceId, telemetry, emit);
    core.startTimers();
    return core;
  }

  /** Loads a model: the cached release at once (offline first); the first load downloads it. */
  async load(name: string): Promise<ModelStatus> {
    this.assertLive();
    this.updater.want(name);
    let pointers = await this.store.pointers(name);
    if (!pointers.active && !pointers.pending) {
      const checked = await this.checkForUpdates().catch(async (error: unknown) => {
        // Offline: a stored release whose environment failure is due is tried without the server.
        const due = await this.failures.dueStoredRetry(name);
        if (!due) throw error;
        await this.store.setPending(name, due);
      });
      pointers = await this.store.pointers(name);
      // A download the network cut off says so (its verified chunks are kept for the next check).
      const cut = checked?.failures.find((f) => f.release.startsWith(`${name}@`));
      if (cut && !pointers.active && !pointers.pending) {
        throw new EdgeshipError(
          cut.code,
          `${cut.release} could not be downloaded (${cut.message}); the next check resumes it`,
        );
      }
    } else if (this.config.checkOnLoad !== false) {
      // Offline first: the cached release runs now; what the check finds runs from the next load.
      void this.checkForUpdates().catch(() => {});
    }
    const candidate = pointers.pending ?? pointers.active;
    if (!candidate) throw await this.failures.nothingToLoad(name);
    if (this.loaded.get(name)?.id !== candidate) await this.switchTo(name, candidate);
    return this.modelStatus(name);
  }

  async run(name: string, inputs: NamedTensors): Promise<NamedTensors> {
    const model = await this.ready(name);
    return this.infer(name, model, inputs, true);
  }

  /**
   * Many steps in one call, the carried state kept here between them. The whole sequence holds
   * the model's queue, so an activation cannot swap the engine between two steps.
   */
  async runSequence(name: string, request: SequenceRequest): Promise<SequenceResult> {
    const model = await this.ready(name);
    return this.serialised(model, () =>
      runSequence(request, (inputs) => this.infer(name, model, inputs, false), model.release.recurrent),
    );
  }

  /** Forgets the model's failed releases: the next load or check tries them again. */
  async reset(name: string): Promise<ModelStatus> {
    this.assertLive();
    await this.failures.reset(name);
    return this.modelStatus(name);
  }

  private async ready(name: string): Promise<LoadedModel> {
    this.assertLive();
    if (!this.loaded.has(name)) await this.load(name);
    return this.loaded.get(name)!;
  }

  /** One inference with its telemetry; `queued` false when the caller already holds the model's queue. */
  private async infer(
    name: string,
    model: LoadedModel,
    inputs: NamedTensors,
    queued: boolean,
  ): Promise<NamedTensors> {
    const key = {
      model: model.release.model,
      version: model.release.version,
      backend: model.backend.chosen.backend,
      role: 'active' as const,
    };
    try {
      const started = performance.now();
      const outputs = queued
        ? await this.serialised(model, () => runWithContract(model.engine, model.release, inputs))
        : await runWithContract(model.engine, model.release, inputs);
      const ms = performance.now() - started;
      this.recordLatency(name, ms);
      this.telemetry?.collector.recordInference(key, model.release, ms, plain(inputs), plain(outputs));
      this.maybeShadow(name, model, inputs, outputs);
      return outputs;
    } catch (error) {
      this.telemetry?.collector.recordError(
        key,
        error instanceof EdgeshipError ? error.code : 'E_NO_BACKEND',
      );
      throw error;
    }
  }

  /** Checks the server now (one check at a time); with immediate activation, switches at once. */
  async checkForUpdates(): Promise<CheckResult> {
    this.assertLive();
    this.checking ??= this.doCheck().finally(() => {
      this.checking = null;
    });
    return this.checking;
  }

  private async doCheck(): Promise<CheckResult> {
    await this.sendTelemetry().catch(() => {});
    let result: CheckResult;
    try {
      // Environment failures whose backoff is over become stageable again.
      await this.failures.syncRefused();
      result = await this.updater.check();
      const offered = new Set(
        Object.values(result.targets).flatMap((t) => [t.active, t.shadow].filter((id) => id !== null)),
      );
      // A newer manifest offering a release refused for a model cause lifts the refusal; the
      // manifest is applied again (a 304 on the ETag) so the release is staged in this check.
      if ((await this.failures.liftOffered(result.manifestVersion, offered)).length > 0) {
        const again = await this.updater.check();
        result = { ...again, changed: result.changed || again.changed };
      }
      this.lastCheck = {
        at: new Date().toISOString(),
        ok: true,
        changed: result.changed,
        manifestVersion: result.manifestVersion,
      };
    } catch (error) {
      const code = error instanceof EdgeshipError ? error.code : 'E_NETWORK';
      this.lastCheck = {
        at: new Date().toISOString(),
        ok: false,
        error: { code, message: (error as Error).message },
      };
      this.emit({ type: 'check-failed', code, message: (error as Error).message });
      throw error;
    }
    for (const [name, target] of Object.entries(result.targets)) {
      const pointers = await this.store.pointers(name);
      const loaded = this.loaded.get(name);
      if (loaded && pointers.pending && this.config.activation === 'immediate') {
        await this.switchTo(name, pointers.pending);
      }
      await this.prepareShadow(name, target.shadow);
    }
    return result;
  }

  /**
   * Opens `id`, health-checks it, and only then makes it active: one store transaction, then the
   * engine swap. A release that fails to load, throws, or gives non-finite outputs is marked
   * failed and the last known good release takes its place.
   */
  private async switchTo(name: string, id: string): Promise<void> {
    const previous = this.loaded.get(name);
    const pointers = await this.store.pointers(name);
    let next: LoadedModel;
    try {
      next = await this.open(id, { healthCheck: true });
    } catch (error) {
      if (error instanceof EdgeshipError && error.code === 'E_DISPOSED') throw error;
      await this.recordFailure(name, id, error);
      const fallback =
        pointers.lastKnownGood && pointers.lastKnownGood !== id ? pointers.lastKnownGood : null;
      if (pointers.active === id) await this.store.rollback(name);
      if (pointers.pending === id) await this.store.setPending(name, null);
      const code = error instanceof EdgeshipError ? error.code : 'E_HEALTH_CHECK';
      this.emit({
        type: 'rolled-back',
        model: name,
        from: id,
        to: fallback,
        code,
        reason: (error as Error).message,
      });
      if (previous && previous.id !== id) return; // the running engine stays
      if (!fallback) throw error;
      next = await this.open(fallback, { healthCheck: true });
      if (pointers.active !== fallback) await this.store.activate(name, fallback);
    }
    if (pointers.active !== next.id) await this.store.activate(name, next.id);
    await this.store.markGood(name, next.id);
    await this.failures.forget(next.id);
    this.loaded.set(name, next);
    if (previous && previous.id !== next.id) {
      await previous.queue.catch(() => {});
      await previous.engine.dispose();
    }
    if (pointers.active !== next.id) {
      this.emit({ type: 'update-activated', model: name, release: next.id, previous: pointers.active });
    }
    await this.store.collectGarbage({ perModel: 2 }).catch(() => {});
  }

  private async open(id: string, opts: { healthCheck: boolean }): Promise<LoadedModel> {
    const started = performance.now();
    const { release, engine, backend } = await openRelease(this.store, id, this.config, opts);
    this.telemetry?.collector.recordLoad(
      { model: release.model, version: release.version, backend: backend.chosen.backend, role: 'active' },
      performance.now() - started,
    );
    return { id, release, engine, backend, queue: Promise.resolve() };
  }

  private async recordFailure(name: string, id: string, error: unknown): Promise<void> {
    await this.failures.record(name, id, error);
    const [model, version] = [name, id.slice(name.length + 1)];
    this.telemetry?.collector.recordError(
      { model, version, backend: 'wasm', role: 'active' },
      error instanceof EdgeshipError ? error.code : 'E_HEALTH_CHECK',
    );
  }

  private async prepareShadow(name: string, shadowId: string | null): Promise<void> {
    const current = this.shadows.get(name);
    if (current?.id === shadowId) return;
    if (current) {
      this.shadows.delete(name);
      await current.queue.catch(() => {});
      await current.engine.dispose();
    }
    if (!shadowId || !this.loaded.has(name)) return;
    try {
      this.shadows.set(name, await this.open(shadowId, { healthCheck: true }));
    } catch (error) {
      await this.recordFailure(name, shadowId, error);
    }
  }

  /** After the caller has its answer, on a sampled share of inputs: never delays the caller. */
  private maybeShadow(name: string, active: LoadedModel, inputs: NamedTensors, outputs: NamedTensors): void {
    const shadow = this.shadows.get(name);
    if (!shadow || Math.random() >= (this.config.shadowSampleRate ?? 0.1)) return;
    // Outputs are transferred to the caller, so the comparison works on copies.
    const activeOutputs = copyTensors(outputs);
    const shadowInputs = copyTensors(inputs);
    setTimeout(() => {
      void this.runShadow(shadow, active, shadowInputs, activeOutputs);
    }, 0);
  }

  private async runShadow(
    shadow: LoadedModel,
    active: LoadedModel,
    inputs: NamedTensors,
    activeOutputs: NamedTensors,
  ) {
    const key = {
      model: shadow.release.model,
      version: shadow.release.version,
      backend: shadow.backend.chosen.backend,
      role: 'shadow' as const,
    };
    try {
      const started = performance.now();
      const outputs = await this.serialised(shadow, () =>
        runWithContract(shadow.engine, shadow.release, inputs),
      );
      const ms = performance.now() - started;
      this.telemetry?.collector.recordInference(key, shadow.release, ms, plain(inputs), plain(outputs));
      const { maxAbsDiff, agreed } = compareForShadow(shadow.release, activeOutputs, outputs);
      this.telemetry?.collector.recordShadowComparison(key, active.release.version, maxAbsDiff, agreed);
    } catch (error) {
      this.telemetry?.collector.recordError(
        key,
        error instanceof EdgeshipError ? error.code : 'E_HEALTH_CHECK',
      );
    }
  }

  async status(): Promise<WorkerStatus> {
    const names = new Set<string>([...this.loaded.keys()]);
    for (const release of await this.store.listReleases()) names.add(release.model);
    for (const record of Object.values(await this.store.releaseFailures())) names.add(record.model);
    const models: ModelStatus[] = [];
    for (const name of names) models.push(await this.modelStatus(name));
    const latency: WorkerStatus['latency'] = {};
    for (const [name, histogram] of this.latency) {
      latency[name] = {
        count: histogramCount(histogram),
        p50: histogramQuantile(histogram, 0.5),
        p95: histogramQuantile(histogram, 0.95),
      };
    }
    return {
      deviceId: this.deviceId,
      runtimeVersion: RUNTIME_VERSION,
      lastCheck: this.lastCheck,
      models,
      latency,
    };
  }

  async modelStatus(name: string): Promise<ModelStatus> {
    const pointers = await this.store.pointers(name);
    const cached = (await this.store.listReleases(name)).filter((r) => r.complete).map((r) => r.id);
    const loaded = this.loaded.get(name);
    return {
      name,
      active: pointers.active,
      pending: pointers.pending,
      lastKnownGood: pointers.lastKnownGood,
      loaded: loaded?.id ?? null,
      backend: loaded?.backend ?? null,
      shadow: this.shadows.get(name)?.id ?? null,
      cached,
      refused: (await this.failures.ofModel(name)).map((r) => this.failures.view(r)),
    };
  }

  /** Seals what was observed into the outbox and sends what is queued. */
  async sendTelemetry() {
    if (!this.telemetry) return { sent: 0, discarded: 0 };
    await this.telemetry.reporter.seal();
    return this.telemetry.sender.flush();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const timer of this.timers) clearInterval(timer);
    // Whatever was observed becomes durable before the worker goes away.
    await this.telemetry?.reporter.seal().catch(() => {});
    for (const model of [...this.loaded.values(), ...this.shadows.values()])
      await model.engine.dispose().catch(() => {});
    this.loaded.clear();
    this.shadows.clear();
    this.store.close();
  }

  private startTimers(): void {
    const checkEvery = this.config.checkIntervalMs ?? 0;
    if (checkEvery > 0)
      this.timers.push(setInterval(() => void this.checkForUpdates().catch(() => {}), checkEvery));
    const sendEvery = this.config.telemetryIntervalMs ?? 60_000;
    if (this.telemetry && sendEvery > 0)
      this.timers.push(setInterval(() => void this.sendTelemetry().catch(() => {}), sendEvery));
  }

  private serialised<T>(model: LoadedModel, task: () => Promise<T>): Promise<T> {
    const run = model.queue.then(task, task);
    model.queue = run.catch(() => {});
    return run;
  }

  private recordLatency(name: string, ms: number): void {
    let histogram = this.latency.get(name);
    if (!histogram) {
      histogram = {};
      this.latency.set(name, histogram);
    }
    recordValue(histogram, ms);
  }

  private assertLive(): void {
    if (this.disposed) throw new EdgeshipError('E_DISPOSED', 'the runtime was disposed');
  }
}

function plain(tensors: NamedTensors) {
  return Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, t.data]));
}

function copyTensors(tensors: NamedTensors): NamedTensors {
  return Object.fromEntries(
    Object.entries(tensors).map(([name, t]) => [
      name,
      { data: t.data.slice() as typeof t.data, dims: [...t.dims] },
    ]),
  );
}
