import { type Histogram, histogramCount, histogramQuantile, recordValue } from '@edgeship/protocol';
import type { ModelStore } from '../store/model-store.ts';
import { RUNTIME_VERSION } from '../version.ts';
import type { Activation } from './activation.ts';
import type { LastCheck, ModelStatus, WorkerStatus } from './config.ts';
import type { FailureBook } from './failure-book.ts';
import type { ShadowLifecycle } from './shadow-lifecycle.ts';

/** Inference latencies per model since the worker started (status().latency). */
export class LatencyBook {
  private readonly histograms = new Map<string, Histogram>();

  record(name: string, ms: number): void {
    let histogram = this.histograms.get(name);
    if (!histogram) {
      histogram = {};
      this.histograms.set(name, histogram);
    }
    recordValue(histogram, ms);
  }

  summary(): WorkerStatus['latency'] {
    const latency: WorkerStatus['latency'] = {};
    for (const [name, histogram] of this.histograms) {
      latency[name] = {
        count: histogramCount(histogram),
        p50: histogramQuantile(histogram, 0.5),
        p95: histogramQuantile(histogram, 0.95),
      };
    }
    return latency;
  }
}

/** What status() reports: every model the worker has loaded, stored or refused. */
export class StatusReport {
  constructor(
    private readonly deviceId: string,
    private readonly store: ModelStore,
    private readonly activation: Activation,
    private readonly shadows: ShadowLifecycle,
    private readonly book: FailureBook,
    readonly latency: LatencyBook,
  ) {}

  async status(lastCheck: LastCheck | null): Promise<WorkerStatus> {
    const names = new Set<string>(this.activation.names());
    for (const release of await this.store.listReleases()) names.add(release.model);
    for (const record of Object.values(await this.store.releaseFailures())) names.add(record.model);
    const models: ModelStatus[] = [];
    for (const name of names) models.push(await this.model(name));
    return {
      deviceId: this.deviceId,
      runtimeVersion: RUNTIME_VERSION,
      lastCheck,
      models,
      latency: this.latency.summary(),
    };
  }

  async model(name: string): Promise<ModelStatus> {
    const pointers = await this.store.pointers(name);
    const cached = (await this.store.listReleases(name)).filter((r) => r.complete).map((r) => r.id);
    const loaded = this.activation.loaded(name);
    return {
      name,
      active: pointers.active,
      pending: pointers.pending,
      lastKnownGood: pointers.lastKnownGood,
      loaded: loaded?.id ?? null,
      backend: loaded?.backend ?? null,
      shadow: this.shadows.loaded(name),
      cached,
      refused: (await this.book.ofModel(name)).map((r) => this.book.view(r)),
    };
  }
}
