import {
  FeatureSourceSchema,
  MonitoringSpecSchema,
  Name,
  PostprocessStepSchema,
  PreprocessStepSchema,
  type RecurrentPair,
  RecurrentPairSchema,
  recurrentIssues,
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
 * The --contract file: the tensor contract, monitoring spec and recurrent pairs that go into the
 * signed release, plus what the pipeline needs to run the model (not signed): how calibration
 * audio becomes frames, and which outputs the accuracy gate compares.
 */
export const ContractSchema = z
  .strictObject({
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
    /**
     * Outputs fed back as inputs at the next frame (Silero VAD: [{ "output": "stateN", "input":
     * "state" }]): signed into the release, and carried by the gates and by runSequence on devices.
     */
    recurrent: z.array(RecurrentPairSchema).max(32).optional(),
    /** The same pairs in 0.2.0's spelling, an output → input map (still read; not both). */
    carry: z.record(z.string(), z.string()).optional(),
    /** .wav calibration files feed this input, one frame per whole input-sized window. */
    audio: z.strictObject({ input: z.string(), sampleRate: z.int().min(1) }).optional(),
    /** Outputs the accuracy gate compares; default: every output that is not carried state. */
    compare: z.array(z.string()).min(1).optional(),
  })
  .superRefine((contract, ctx) => {
    if (contract.recurrent && contract.carry) {
      ctx.addIssue({ code: 'custom', path: ['carry'], message: 'give recurrent or carry, not both' });
      return;
    }
    const recurrent = contract.recurrent ?? pairsOf(contract.carry);
    const issues = recurrentIssues({ ...contract, recurrent });
    for (const issue of issues) {
      // Name the field the file used.
      const path = contract.carry ? ['carry', recurrent[issue.path[1] as number]!.output] : issue.path;
      ctx.addIssue({ code: 'custom', path, message: issue.message });
    }
  })
  .transform(({ carry, recurrent, ...contract }) => {
    const pairs = recurrent ?? pairsOf(carry);
    // The gates take the output → input map; the release signs the pairs.
    return { ...contract, recurrent: pairs, carry: carryOf(pairs) };
  });
export type Contract = z.infer<typeof ContractSchema>;
export type ContractFeature = z.infer<typeof ContractFeatureSchema>;

function pairsOf(carry: Record<string, string> = {}): RecurrentPair[] {
  return Object.entries(carry).map(([output, input]) => ({ output, input }));
}

function carryOf(pairs: readonly RecurrentPair[]): Record<string, string> {
  return Object.fromEntries(pairs.map((p) => [p.output, p.input]));
}
