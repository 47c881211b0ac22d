import { codeOf } from '@edgeship/protocol';
import type { Backend } from '../engines/engine.ts';
import { engineKey } from '../store/meta-schema.ts';
import type { ModelStore } from '../store/model-store.ts';
import type { TelemetryCollector } from '../telemetry/collector.ts';
import { ActivationError } from './activation-error.ts';
import { forcedBackend, type RuntimeConfig } from './config.ts';
import type { FailureBook } from './failure-book.ts';

/**
 * A failed activation, remembered (failure-book.ts decides when it is tried again) and counted
 * in telemetry under the release's own model and version and the backend it failed on.
 */
export class FailureRecords {
  constructor(
    private readonly book: FailureBook,
    private readonly store: ModelStore,
    private readonly config: RuntimeConfig,
    private readonly collector: TelemetryCollector | undefined,
  ) {}

  async record(model: string, id: string, error: unknown): Promise<void> {
    await this.book.record(model, id, error);
    if (!this.collector) return;
    // A release that is not installed has no signed version to report under.
    const installed = await this.store.getRelease(id);
    if (!installed) return;
    this.collector.recordError(
      {
        model: installed.model,
        version: installed.version,
        backend: await this.backendOf(id, error),
        role: 'active',
      },
      codeOf(error),
    );
  }

  /**
   * The engine's backend once one had started; else the one measured for the release here, the
   * one the app forces, or WASM, which every candidate list ends with.
   */
  private async backendOf(id: string, error: unknown): Promise<Backend> {
    if (error instanceof ActivationError && error.backend) return error.backend;
    const forced = forcedBackend(this.config);
    const remembered = await this.store.getMeta(engineKey(id, forced));
    return remembered?.backend ?? forced ?? 'wasm';
  }
}
