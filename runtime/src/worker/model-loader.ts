import { EdgeshipError } from '@edgeship/protocol';
import type { ModelPointers, ModelStore } from '../store/model-store.ts';
import type { CheckResult, Updater } from '../update/updater.ts';
import type { Activation } from './activation.ts';
import type { ModelStatus, RuntimeConfig } from './config.ts';
import type { FailureBook } from './failure-book.ts';

/** What the worker's release handling shares: its loads (here) and its update checks (update-checks.ts). */
export interface ReleaseDeps {
  config: RuntimeConfig;
  store: ModelStore;
  updater: Updater;
  book: FailureBook;
  activation: Activation;
}

/**
 * What `load(name)` does: the cached release runs at once (offline first) and a check looks for a
 * newer one behind it; a first load waits for the check that downloads the release.
 */
export class ModelLoader {
  constructor(
    private readonly deps: ReleaseDeps,
    /** The runtime's checkForUpdates (single flight, refused once disposed). */
    private readonly check: () => Promise<CheckResult>,
    private readonly modelStatus: (name: string) => Promise<ModelStatus>,
  ) {}

  async load(name: string): Promise<ModelStatus> {
    this.deps.updater.want(name);
    const pointers = await this.deps.store.pointers(name);
    if (!pointers.active && !pointers.pending) {
      try {
        return await this.install(name);
      } finally {
        // Bytes the download left for this load and that it did not take are not kept.
        this.deps.updater.awaitInstall(name, false);
        this.deps.store.dropHandedOver(name);
      }
    }
    if (this.deps.config.checkOnLoad !== false) {
      // Offline first: the cached release runs now; what the check finds runs from the next load.
      void this.check().catch(() => {});
    }
    return this.activate(name, pointers);
  }

  /** A first load: nothing stored yet, so the check it waits for downloads the release. */
  private async install(name: string): Promise<ModelStatus> {
    this.deps.updater.awaitInstall(name, true);
    const checked = await this.check().catch(async (error: unknown) => {
      // Offline: a stored release whose environment failure is due is tried without the server.
      const due = await this.deps.book.dueStoredRetry(name);
      if (!due) throw error;
      await this.deps.store.setPending(name, due);
    });
    const pointers = await this.deps.store.pointers(name);
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
    const candidate = pointers.pending ?? pointers.active;
    if (!candidate) throw await this.deps.book.nothingToLoad(name);
    if (this.deps.activation.loaded(name)?.id !== candidate)
      await this.deps.activation.switchTo(name, candidate);
    return this.modelStatus(name);
  }
}
