import { codeOf } from '@edgeship/protocol';
import { runWithContract } from '../engines/pipeline.ts';
import { hasNonFinite, type NamedTensors } from '../engines/tensor.ts';
import type { TelemetryCollector } from '../telemetry/collector.ts';
import type { ActivationGuard } from './activation-guard.ts';
import type { LoadedModel, ModelSlot } from './model-slot.ts';
import type { PredictionBook } from './predictions.ts';
import { runSequence, type SequenceRequest, type SequenceResult } from './sequence.ts';
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

/** The worker's inference calls on a model's slot; each holds the model's queue for its whole run. */
export class Inference {
  constructor(
    private readonly observers: InferenceObservers,
    private readonly predictions: PredictionBook,
  ) {}

  /** One inference, with the id `feedback` and `outcome` name it by. */
  run(
    slot: ModelSlot,
    name: string,
    inputs: NamedTensors,
  ): Promise<{ outputs: NamedTensors; predictionId: string }> {
    return slot.run(async (model) => {
      const outputs = await infer(this.observers, name, model, inputs);
      const predictionId = this.predictions.add(model.release, model.backend.chosen.backend, outputs);
      return { outputs, predictionId };
    });
  }

  /**
   * Many steps in one call, the carried state kept here between them. The whole sequence holds
   * the model's queue, so an activation cannot swap the engine between two steps.
   */
  sequence(slot: ModelSlot, name: string, request: SequenceRequest): Promise<SequenceResult> {
    return slot.run((model) =>
      runSequence(request, (inputs) => infer(this.observers, name, model, inputs), model.release.recurrent),
    );
  }
}
