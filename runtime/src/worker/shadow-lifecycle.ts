import { codeOf } from '@edgeship/protocol';
import { runWithContract } from '../engines/pipeline.ts';
import type { NamedTensors } from '../engines/tensor.ts';
import type { TelemetryCollector } from '../telemetry/collector.ts';
import type { Activation } from './activation.ts';
import type { FailureRecords } from './failure-records.ts';
import { type LoadedModel, ModelSlot } from './model-slot.ts';
import { compareForShadow } from './shadow.ts';
import { copyTensors, plainTensors } from './tensor-copies.ts';

/**
 * The shadow candidates a shadow rollout gives this device: opened beside the active release
 * after a check, run on a sampled share of inputs after the caller has its answer, compared,
 * and counted in telemetry. Never returned to callers.
 */
export class ShadowLifecycle {
  private readonly shadows = new Map<string, ModelSlot>();

  constructor(
    private readonly activation: Activation,
    private readonly failures: FailureRecords,
    private readonly collector: TelemetryCollector | undefined,
    private readonly sampleRate: number,
  ) {}

  loaded(name: string): string | null {
    return this.shadows.get(name)?.current.id ?? null;
  }

  /** After a check: opens the candidate the manifest names (closing the previous one), or none. */
  async prepare(name: string, shadowId: string | null): Promise<void> {
    const current = this.shadows.get(name);
    if (current?.current.id === shadowId) return;
    if (current) {
      this.shadows.delete(name);
      await current.dispose().catch(() => {});
    }
    if (!shadowId || !this.activation.loaded(name)) return;
    try {
      this.shadows.set(name, new ModelSlot(await this.activation.open(shadowId, { healthCheck: true })));
    } catch (error) {
      await this.failures.record(name, shadowId, error);
    }
  }

  /** After the caller has its answer, on a sampled share of inputs: never delays the caller. */
  maybeRun(name: string, active: LoadedModel, inputs: NamedTensors, outputs: NamedTensors): void {
    const shadow = this.shadows.get(name);
    if (!shadow || Math.random() >= this.sampleRate) return;
    // Outputs are transferred to the caller, so the comparison works on copies.
    const activeOutputs = copyTensors(outputs);
    const shadowInputs = copyTensors(inputs);
    setTimeout(() => {
      void shadow.run((candidate) => this.compare(candidate, active, shadowInputs, activeOutputs));
    }, 0);
  }

  private async compare(
    shadow: LoadedModel,
    active: LoadedModel,
    inputs: NamedTensors,
    activeOutputs: NamedTensors,
  ): Promise<void> {
    const key = {
      model: shadow.release.model,
      version: shadow.release.version,
      backend: shadow.backend.chosen.backend,
      role: 'shadow' as const,
    };
    try {
      const started = performance.now();
      const outputs = await runWithContract(shadow.engine, shadow.release, inputs);
      const ms = performance.now() - started;
      this.collector?.recordInference(key, shadow.release, ms, plainTensors(inputs), plainTensors(outputs));
      const { maxAbsDiff, agreed } = compareForShadow(shadow.release, activeOutputs, outputs);
      this.collector?.recordShadowComparison(key, active.release.version, maxAbsDiff, agreed);
    } catch (error) {
      this.collector?.recordError(key, codeOf(error));
    }
  }

  async dispose(): Promise<void> {
    for (const slot of this.shadows.values()) await slot.dispose().catch(() => {});
    this.shadows.clear();
  }
}
