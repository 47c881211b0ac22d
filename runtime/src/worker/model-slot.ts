import type { Release } from '@edgeship/protocol';
import type { Engine } from '../engines/engine.ts';
import type { BackendReport } from './config.ts';

/** A release opened on an engine in this worker. */
export interface LoadedModel {
  id: string;
  release: Release;
  engine: Engine;
  backend: BackendReport;
}

/**
 * One model's engine and the queue its calls wait in: an ORT session is not re-entrant, so runs
 * are serialised. A task reads `current` when its turn comes, and a swap takes its own turn, so
 * a new release lands between two calls, never under one that is running.
 */
export class ModelSlot {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private active: LoadedModel) {}

  get current(): LoadedModel {
    return this.active;
  }

  /** Runs `task` on the release that is current when its turn comes. */
  run<T>(task: (model: LoadedModel) => Promise<T>): Promise<T> {
    const go = () => task(this.active);
    const run = this.queue.then(go, go);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * Puts `next` in place once the calls queued before have finished, and disposes the engine it
   * replaces outside the queue (nothing can reach it any more), so later calls do not wait for it.
   */
  async replace(next: LoadedModel): Promise<void> {
    const previous = await this.run(async (model) => {
      this.active = next;
      return model;
    });
    if (previous !== next) await previous.engine.dispose();
  }

  /** Waits for the queued calls, then frees the engine. */
  async dispose(): Promise<void> {
    await this.queue;
    await this.active.engine.dispose();
  }
}
