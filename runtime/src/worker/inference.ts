import { codeOf } from '@edgeship/protocol';
import { runWithContract } from '../engines/pipeline.ts';
import { hasNonFinite, type NamedTensors } from '../engines/tensor.ts';
import type { TelemetryCollector } from '../telemetry/collector.ts';
import type { ActivationGuard } from './activation-guard.ts';
import type { LoadedModel } from './model-slot.ts';
import type { ShadowLifecycle } from './shadow-lifecycle.ts';
import type { LatencyBook } from './status-report.ts';
import { plainTensors } from './tensor-copies.ts';

/** What one inference reports to: latency, telemetry and the shadow candidate. */
export interface InferenceObservers {
  latency: LatencyBook;
  collector: TelemetryCollector | undefined;
  shadows: ShadowLifecycle;
  guard: ActivationGuard | null;
}

/**
 * One inference on the release the model's queue handed over (the caller holds the queue):
 * the release's contract, its latency and drift telemetry, and a sampled shadow run after.
 */
export async function infer(
  observers: InferenceObservers,
  name: string,
  model: LoadedModel,
  inputs: NamedTensors,
): Promise<NamedTensors> {
  const { release, backend } = model;
  const key = {
    model: release.model,
    version: release.version,
    backend: backend.chosen.backend,
    role: 'active' as const,
  };
  try {
    const started = performance.now();
    const outputs = await runWithContract(model.engine, release, inputs);
    const ms = performance.now() - started;
    observers.latency.record(name, ms);
    observers.collector?.recordInference(key, release, ms, plainTensors(inputs), plainTensors(outputs));
    observers.shadows.maybeRun(name, model, inputs, outputs);
    observers.guard?.observe(name, model.id, hasNonFinite(outputs) ? 'non-finite' : 'ok');
    return outputs;
  } catch (error) {
    const code = codeOf(error);
    observers.collector?.recordError(key, code);
    // Inputs the contract refused are the caller's doing, not the release's.
    if (code !== 'E_INPUT') observers.guard?.observe(name, model.id, 'failed');
    throw error;
  }
}
