import * as z from 'zod/mini';
import { IsoTime, Name, SemVer, Sha256Hex, signedSchema } from './schema-primitives.ts';
import type { Signed } from './signature.ts';

export const MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024;
export const MAX_CHUNKS_PER_FILE = 65_536;

export const DTYPES = ['float32', 'float16', 'int64', 'int32', 'int8', 'uint8', 'bool'] as const;
export type DType = (typeof DTYPES)[number];

const FiniteNumber = z.number().check(z.refine(Number.isFinite, 'a finite number'));

/** A tensor's contract. Symbolic dimensions are strings (e.g. "batch"). */
export const TensorSpecSchema = z.strictObject({
  name: z.string().check(z.minLength(1), z.maxLength(128)),
  dtype: z.enum(DTYPES),
  shape: z
    .array(
      z.union([
        z.int().check(z.minimum(0), z.maximum(1 << 24)),
        z.string().check(z.minLength(1), z.maxLength(32)),
      ]),
    )
    .check(z.maxLength(8)),
  range: z.optional(z.strictObject({ min: FiniteNumber, max: FiniteNumber })),
});
export type TensorSpec = z.infer<typeof TensorSpecSchema>;

export const ChunkRefSchema = z.strictObject({
  sha256: Sha256Hex,
  size: z.int().check(z.minimum(1), z.maximum(16 * 1024 * 1024)),
});
export type ChunkRef = z.infer<typeof ChunkRefSchema>;

/** One file of a release, content-addressed as a whole and as chunks that concatenate to it. */
export const FileEntrySchema = z
  .strictObject({
    path: z
      .string()
      .check(z.minLength(1), z.maxLength(128), z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a plain file name')),
    size: z.int().check(z.minimum(1), z.maximum(MAX_FILE_BYTES)),
    sha256: Sha256Hex,
    chunks: z.array(ChunkRefSchema).check(z.minLength(1), z.maxLength(MAX_CHUNKS_PER_FILE)),
  })
  .check(
    z.refine(
      (f) => f.chunks.reduce((n, c) => n + c.size, 0) === f.size,
      'chunk sizes must add up to the file size',
    ),
  );
export type FileEntry = z.infer<typeof FileEntrySchema>;

/** Declarative pre- and postprocessing, run in the worker for every caller (no skew). */
export const PreprocessStepSchema = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('scale'),
    tensor: z.string().check(z.maxLength(128)),
    mul: FiniteNumber,
    add: FiniteNumber,
  }),
  z.strictObject({
    op: z.literal('clip'),
    tensor: z.string().check(z.maxLength(128)),
    min: FiniteNumber,
    max: FiniteNumber,
  }),
]);
export const PostprocessStepSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('sigmoid'), tensor: z.string().check(z.maxLength(128)) }),
  z.strictObject({ op: z.literal('softmax'), tensor: z.string().check(z.maxLength(128)) }),
]);

/** Where a monitored feature comes from: one scalar per inference. */
export const FeatureSourceSchema = z.strictObject({
  from: z.enum(['input', 'output']),
  tensor: z.string().check(z.maxLength(128)),
  reduce: z.enum(['rms', 'mean', 'max', 'argmax', 'first']),
});

/**
 * A monitored feature with its reference distribution. `binEdges` (ascending) split the line
 * into edges.length + 1 bins: (-inf, e0), [e0, e1), ..., [e_last, +inf); `reference` holds each
 * bin's share on the reference data.
 */
export const MonitoredFeatureSchema = z
  .strictObject({
    name: Name,
    source: FeatureSourceSchema,
    binEdges: z.array(FiniteNumber).check(z.minLength(1), z.maxLength(63)),
    reference: z.array(z.number().check(z.minimum(0), z.maximum(1))).check(z.minLength(2), z.maxLength(64)),
  })
  .check(
    z.refine((f) => f.reference.length === f.binEdges.length + 1, 'reference has one share per bin'),
    z.refine((f) => f.binEdges.every((e, i) => i === 0 || e > f.binEdges[i - 1]!), 'bin edges must ascend'),
  );
export type MonitoredFeature = z.infer<typeof MonitoredFeatureSchema>;

export const MonitoringSpecSchema = z.strictObject({
  features: z.array(MonitoredFeatureSchema).check(z.maxLength(16)),
  /** The output whose score decides (e.g. speech probability) and the threshold it is read at. */
  decision: z.optional(
    z.strictObject({ tensor: z.string().check(z.maxLength(128)), threshold: FiniteNumber }),
  ),
  /**
   * A classifier's classes (quality.ts): the output whose first `labels.length` values score them
   * (the predicted class is their argmax; with two labels and one value, the value read at the
   * decision threshold, or 0.5). Feedback from the app is counted against them. Optional: without
   * it, a release with a `decision` is a binary classifier, labels `negative` and `positive`.
   */
  classes: z.optional(
    z.strictObject({
      tensor: z.string().check(z.maxLength(128)),
      labels: z.array(z.string().check(z.minLength(1), z.maxLength(64))).check(
        z.minLength(2),
        z.maxLength(32),
        z.refine((l) => new Set(l).size === l.length, 'labels must be distinct'),
      ),
    }),
  ),
});
export type MonitoringSpec = z.infer<typeof MonitoringSpecSchema>;

export const QuantizationSchema = z.strictObject({
  method: z.enum(['none', 'int8', 'uint8', 'uint16', 'float16']),
  perChannel: z.optional(z.boolean()),
});

const CardText = z.string().check(z.minLength(1), z.maxLength(4096));
const MetricValue = z.strictObject({
  metric: z.string().check(z.minLength(1), z.maxLength(64)),
  value: FiniteNumber,
  /** The data it was measured on (a name or a hash). */
  dataset: z.optional(z.string().check(z.minLength(1), z.maxLength(256))),
});

/**
 * A structured model card: what the model is for, where it fails, what it learned from and how it
 * scored, overall and per segment (e.g. per device class or language). Signed with the release,
 * so what operators read is what the publisher said.
 */
export const ModelCardSchema = z.strictObject({
  intendedUse: z.optional(CardText),
  limitations: z.optional(CardText),
  trainingData: z.optional(CardText),
  evaluation: z.optional(z.array(MetricValue).check(z.maxLength(64))),
  segments: z.optional(
    z
      .array(
        z.strictObject({
          segment: z.string().check(z.minLength(1), z.maxLength(128)),
          results: z.array(MetricValue).check(z.minLength(1), z.maxLength(32)),
        }),
      )
      .check(z.maxLength(64)),
  ),
});
export type ModelCard = z.infer<typeof ModelCardSchema>;

/**
 * Where the model came from, as the publisher says: nothing here is checked by anyone (training
 * code and data are not uploaded), so every reader must show it as self-reported. `parent` is a
 * version of the same model this one was derived from (fine-tuned, re-quantized).
 */
export const ReleaseLineageSchema = z.strictObject({
  trainingCode: z.optional(z.string().check(z.minLength(1), z.maxLength(512))),
  data: z.optional(z.string().check(z.minLength(1), z.maxLength(512))),
  hyperparameters: z.optional(
    z
      .record(
        z.string().check(z.maxLength(64)),
        z.union([FiniteNumber, z.string().check(z.maxLength(256)), z.boolean()]),
      )
      .check(z.refine((r) => Object.keys(r).length <= 64, 'at most 64 hyperparameters')),
  ),
  parent: z.optional(SemVer),
});
export type ReleaseLineage = z.infer<typeof ReleaseLineageSchema>;

/**
 * Recurrent state: an output fed back as an input at the next step (Silero VAD: stateN → state).
 * Signed with the contract, so a sequence call carries the pairs the publisher declared.
 */
export const RecurrentPairSchema = z.strictObject({
  output: z.string().check(z.minLength(1), z.maxLength(128)),
  input: z.string().check(z.minLength(1), z.maxLength(128)),
});
export type RecurrentPair = z.infer<typeof RecurrentPairSchema>;

/** The gate that compares the candidate with the channel's production release on labelled data. */
export const GATE_VS_PRODUCTION = 'accuracy-vs-production';

/**
 * The gates `edgeship publish` ran before signing, with their numbers: what operators and devices
 * can see was checked. Every gate listed passed (publish signs nothing otherwise). `against` names
 * the production release the candidate was compared with, on which channel (`version` null: the
 * channel had none, so there was nothing to fall below); `dataset` is the gate data's hash.
 */
export const ReleaseGatesSchema = z.strictObject({
  dataset: Sha256Hex,
  frames: z.int().check(z.minimum(1)),
  results: z
    .array(
      z.strictObject({
        name: z.string().check(z.minLength(1), z.maxLength(64)),
        value: z.nullable(FiniteNumber),
        limit: z.nullable(FiniteNumber),
      }),
    )
    .check(z.minLength(1), z.maxLength(32)),
  against: z.optional(z.strictObject({ app: Name, channel: Name, version: z.nullable(SemVer) })),
});
export type ReleaseGates = z.infer<typeof ReleaseGatesSchema>;

/** What a publisher signs: the model's bytes and contract. Rollout decisions are not in here. */
export const ReleaseSchema = z
  .strictObject({
    type: z.literal('edgeship/release'),
    model: Name,
    version: SemVer,
    format: z.enum(['onnx', 'tfjs']),
    /** onnx: the .onnx graph first, then any external-data files it names; tfjs: model.json first, then its weight shards. */
    files: z.array(FileEntrySchema).check(z.minLength(1), z.maxLength(64)),
    quantization: QuantizationSchema,
    inputs: z.array(TensorSpecSchema).check(z.minLength(1), z.maxLength(32)),
    outputs: z.array(TensorSpecSchema).check(z.minLength(1), z.maxLength(32)),
    preprocessing: z.array(PreprocessStepSchema).check(z.maxLength(16)),
    postprocessing: z.array(PostprocessStepSchema).check(z.maxLength(16)),
    monitoring: MonitoringSpecSchema,
    /**
     * Optional: older releases name no pairs. Runtime packages up to 0.2.0 parse releases strictly
     * and refuse a manifest that holds a release with it (see CHANGELOG).
     */
    recurrent: z.optional(z.array(RecurrentPairSchema).check(z.maxLength(32))),
    minRuntimeVersion: SemVer,
    createdAt: IsoTime,
    /** Optional (added later): absent from older releases, whose signatures stay valid. */
    modelCard: z.optional(ModelCardSchema),
    lineage: z.optional(ReleaseLineageSchema),
    gates: z.optional(ReleaseGatesSchema),
  })
  .check(
    z.superRefine((release, ctx) => {
      for (const issue of recurrentIssues(release)) ctx.addIssue({ code: 'custom', ...issue });
    }),
  );
export type Release = z.infer<typeof ReleaseSchema>;
export const SignedReleaseSchema = signedSchema(ReleaseSchema);
export type SignedRelease = Signed<Release>;

/**
 * What is wrong with a contract's recurrent pairs: each names one of its outputs and one of its
 * inputs, and no output or input is in two pairs (a step feeds each input one value).
 */
export function recurrentIssues(contract: {
  inputs: ReadonlyArray<{ name: string }>;
  outputs: ReadonlyArray<{ name: string }>;
  recurrent?: ReadonlyArray<RecurrentPair>;
}): Array<{ path: (string | number)[]; message: string }> {
  const inputs = new Set(contract.inputs.map((t) => t.name));
  const outputs = new Set(contract.outputs.map((t) => t.name));
  const seen = { output: new Set<string>(), input: new Set<string>() };
  const issues: Array<{ path: (string | number)[]; message: string }> = [];
  (contract.recurrent ?? []).forEach((pair, i) => {
    const at = ['recurrent', i];
    if (!outputs.has(pair.output))
      issues.push({ path: [...at, 'output'], message: `"${pair.output}" is not one of the outputs` });
    if (!inputs.has(pair.input))
      issues.push({ path: [...at, 'input'], message: `"${pair.input}" is not one of the inputs` });
    for (const side of ['output', 'input'] as const) {
      if (seen[side].has(pair[side]))
        issues.push({ path: [...at, side], message: `"${pair[side]}" is in two recurrent pairs` });
      seen[side].add(pair[side]);
    }
  });
  return issues;
}

/** A release's identity, also used as its key in stores and telemetry. */
export function releaseId(release: Pick<Release, 'model' | 'version'>): string {
  return `${release.model}@${release.version}`;
}
