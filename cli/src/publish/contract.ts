import {
  FeatureSourceSchema,
  MonitoringSpecSchema,
  Name,
  PostprocessStepSchema,
  PreprocessStepSchema,
  TensorSpecSchema,
} from '@edgeship/protocol';
import { z } from 'zod';

/**
 * A monitored feature as the publisher declares it. Bin edges are optional: without them the
 * profiler places `bins` quantile edges over the calibration data. A `reference` given here is
 * ignored; it is always measured.
 */
const ContractFeatureSchema = z.strictObject({
  name: Name,
  source: FeatureSourceSchema,
  binEdges: z.array(z.number()).min(1).max(63).optional(),
  bins: z.int().min(2).max(64).optional(),
  reference: z.array(z.number()).optional(),
});

/**
 * The --contract file: the tensor contract and monitoring spec that go into the signed release,
 * plus what the pipeline needs to run the model (not signed): recurrent state to carry between
 * frames, how calibration audio becomes frames, and which outputs the accuracy gate compares.
 */
export const ContractSchema = z.strictObject({
  inputs: z.array(TensorSpecSchema).min(1).max(32),
  outputs: z.array(TensorSpecSchema).min(1).max(32),
  preprocessing: z.array(PreprocessStepSchema).max(16).default([]),
  postprocessing: z.array(PostprocessStepSchema).max(16).default([]),
  monitoring: z
    .strictObject({
      features: z.array(ContractFeatureSchema).max(16),
      decision: MonitoringSpecSchema.shape.decision,
    })
    .default({ features: [] }),
  /** Output → input fed back into the next frame (e.g. Silero VAD: { "stateN": "state" }). */
  carry: z.record(z.string(), z.string()).default({}),
  /** .wav calibration files feed this input, one frame per whole input-sized window. */
  audio: z.strictObject({ input: z.string(), sampleRate: z.int().min(1) }).optional(),
  /** Outputs the accuracy gate compares; default: every output that is not carried state. */
  compare: z.array(z.string()).min(1).optional(),
});
export type Contract = z.infer<typeof ContractSchema>;
export type ContractFeature = z.infer<typeof ContractFeatureSchema>;
