import { codeOf, EdgeshipError, type Release } from '@edgeship/protocol';
import type { ModelStore } from '../store/model-store.ts';
import type { TelemetryCollector } from '../telemetry/collector.ts';
import { ActivationError } from './activation-error.ts';
import type { ActivationGuard, Regression } from './activation-guard.ts';
import type { EngineStartStep, RuntimeConfig, RuntimeEvent } from './config.ts';
import type { FailureBook } from './failure-book.ts';
import type { FailureRecords } from './failure-records.ts';
import { type LoadedModel, ModelSlot } from './model-slot.ts';
import { openRelease } from './open-release.ts';

/**
 * Which release each model runs in this worker, and how that changes: a release is opened and
 * health-checked before it becomes active (one store transaction), then swapped in between two
 * calls. A release that fails is recorded and the last known good takes its place.
 */
export class Activation {
  private readonly slots = new Map<string, ModelSlot>();

  constructor(
    private readonly store: ModelStore,
    private readonly config: RuntimeConfig,
    private readonly book: FailureBook,
    private readonly failures: FailureRecords,
    private readonly collector: TelemetryCollector | undefined,
    private readonly emit: (event: RuntimeEvent) => void,
    private readonly guard: ActivationGuard | null,
  ) {}

  slot(name: string): ModelSlot | undefined {
    return this.slots.get(name);
  }

  loaded(name: string): LoadedModel | undefined {
    return this.slots.get(name)?.current;
  }

  names(): string[] {
    return [...this.slots.keys()];
  }

  /** Opens a stored release on an engine (its load time counted), health-checked if asked. */
  async open(id: string, opts: { healthCheck: boolean }): Promise<LoadedModel> {
    const started = performance.now();
    // The page bounds each start by these two events (client.ts): a worker whose engine start
    // never returns is replaced there, since nothing in a stuck worker can be relied on to report.
    let starting: string | null = null;
    const onStep = (release: Release, step: EngineStartStep) => {
      starting = release.model;
      const bytes = release.files.reduce((n, file) => n + file.size, 0);
      this.emit({ type: 'engine-starting', model: release.model, release: id, bytes, step });
    };
    const ended = (ok: boolean) => {
      if (starting !== null) this.emit({ type: 'engine-started', model: starting, release: id, ok });
    };
    let opened: Awaited<ReturnType<typeof openRelease>>;
    try {
      opened = await openRelease(this.store, id, this.config, { ...opts, onStep });
    } catch (error) {
      ended(false);
      throw error;
    }
    ended(true);
    const { release, engine, backend } = opened;
    const key = {
      model: release.model,
      version: release.version,
      backend: backend.chosen.backend,
      role: 'active' as const,
    };
    this.collector?.recordLoad(key, performance.now() - started);
    this.collector?.recordFallbacks(
      key,
      backend.fallbacks.map((f) => f.code),
    );
    return { id, release, engine, backend };
  }

  /**
   * Opens `id`, health-checks it, and only then makes it active: one store transaction, then the
   * engine swap. A release that fails to load, throws, or gives non-finite outputs is marked
   * failed and the last known good release takes its place.
   */
  async switchTo(name: string, id: string): Promise<void> {
    const previous = this.loaded(name);
    const pointers = await this.store.pointers(name);
    let next: LoadedModel;
    try {
      next = await this.open(id, { healthCheck: true });
    } catch (error) {
      if (error instanceof EdgeshipError && error.code === 'E_DISPOSED') throw error;
      await this.failures.record(name, id, error);
      const fallback =
        pointers.lastKnownGood && pointers.lastKnownGood !== id ? pointers.lastKnownGood : null;
      if (pointers.active === id) await this.store.rollback(name);
      if (pointers.pending === id) await this.store.setPending(name, null);
      const code = codeOf(error);
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
    // What it replaces is where the guard sends the device back to (activation-guard.ts).
    const replaced = previous?.id ?? pointers.lastKnownGood;
    if (replaced !== next.id) this.guard?.watch(name, next.id, replaced);
    if (pointers.lastKnownGood !== next.id) await this.store.markGood(name, next.id);
    await this.book.forget(next.id);
    const slot = this.slots.get(name);
    if (slot) await slot.replace(next);
    else this.slots.set(name, new ModelSlot(next));
    if (pointers.active !== next.id) {
      this.emit({ type: 'update-activated', model: name, release: next.id, previous: pointers.active });
      // Releases become garbage when what runs changes: a cold start of the same one scans nothing.
      await this.store.collectGarbage({ perModel: 2 }).catch(() => {});
    }
  }

  /**
   * The guard found `release` worse than the one it replaced: it is recorded as failed (refused
   * until a newer manifest offers it, or reset), and the replaced release runs again, swapped in
   * between two calls. If that one cannot open, the new release keeps running.
   */
  async leave(regression: Regression): Promise<void> {
    const { model: name, release, replaced, reason } = regression;
    if (this.loaded(name)?.id !== release) return;
    const error = new ActivationError('guard', `${release} regressed after activation: ${reason}`, {
      backend: this.loaded(name)?.backend.chosen.backend,
    });
    await this.failures.record(name, release, error);
    const left = this.loaded(name);
    if (left) {
      this.collector?.recordGuardFallback({
        model: left.release.model,
        version: left.release.version,
        backend: left.backend.chosen.backend,
        role: 'active',
      });
    }
    const next = await this.open(replaced, { healthCheck: true });
    const pointers = await this.store.pointers(name);
    await this.store.activate(name, replaced);
    await this.store.markGood(name, replaced);
    if (pointers.pending === release) await this.store.setPending(name, null);
    await this.book.forget(replaced);
    await this.slots.get(name)?.replace(next);
    this.emit({
      type: 'rolled-back',
      model: name,
      from: release,
      to: replaced,
      code: error.code,
      reason: error.message,
    });
  }

  async dispose(): Promise<void> {
    for (const slot of this.slots.values()) await slot.dispose().catch(() => {});
    this.slots.clear();
  }
}
