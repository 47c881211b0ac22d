import * as z from 'zod';
import { IsoTime, Name, SemVer, Sha256Hex, signedSchema } from './schema-primitives.ts';
import type { Signed } from './signature.ts';

export const MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024;
export const MAX_CHUNKS_PER_FILE = 65_536;

export const DTYPES = ['float32', 'float16', 'int64', 'int32', 'int8', 'uint8', 'bool'] as const;
export type DType = (typeof DTYPES)[number];

const FiniteNumber = z.number().refine(Number.isFinite, 'a finite number');

/** A tensor's contract. Symbolic dimensions are strings (e.g. "batch"). */
export const TensorSpecSchema = z.strictObject({
  name: z.string().min(1).max(128),
  dtype: z.enum(DTYPES),
  shape: z
    .array(
      z.union([
        z
          .int()
          .min(0)
          .max(1 << 24),
        z.string().min(1).max(32),
      ]),
    )
    .max(8),
  range: z.strictObject({ min: FiniteNumber, max: FiniteNumber }).optional(),
});
export type TensorSpec = z.infer<typeof TensorSpecSchema>;

export const ChunkRefSchema = z.strictObject({
  sha256: Sha256Hex,
  size: z
    .int()
    .min(1)
    .max(16 * 1024 * 1024),
});
export type ChunkRef = z.infer<typeof ChunkRefSchema>;

/** One file of a release, content-addressed as a whole and as chunks that concatenate to it. */
export const FileEntrySchema = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a plain file name'),
    size: z.int().min(1).max(MAX_FILE_BYTES),
    sha256: Sha256Hex,
    chunks: z.array(ChunkRefSchema).min(1).max(MAX_CHUNKS_PER_FILE),
  })
  .refine(
    (f) => f.chunks.reduce((n, c) => n + c.size, 0) === f.size,
    'chunk sizes must add up to the file size',
  );
export type FileEntry = z.infer<typeof FileEntrySchema>;

/** Declarative pre- and postprocessing, run in the worker for every caller (no skew). */
export const PreprocessStepSchema = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('scale'),
    tensor: z.string().max(128),
    mul: FiniteNumber,
    add: FiniteNumber,
  }),
  z.strictObject({
    op: z.literal('clip'),
    tensor: z.string().max(128),
    min: FiniteNumber,
    max: FiniteNumber,
  }),
]);
export const PostprocessStepSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('sigmoid'), tensor: z.string().max(128) }),
  z.strictObject({ op: z.literal('softmax'), tensor: z.string().max(128) }),
]);

/** Where a monitored feature comes from: one scalar per inference. */
export const FeatureSourceSchema = z.strictObject({
  from: z.enum(['input', 'output']),
  tensor: z.string().max(128),
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
    binEdges: z.array(FiniteNumber).min(1).max(63),
    reference: z.array(z.number().min(0).max(1)).min(2).max(64),
  })
  .refine((f) => f.reference.length === f.binEdges.length + 1, 'reference has one share per bin')
  .refine((f) => f.binEdges.every((e, i) => i === 0 || e > f.binEdges[i - 1]!), 'bin edges must ascend');
export type MonitoredFeature = z.infer<typeof MonitoredFeatureSchema>;

export const MonitoringSpecSchema = z.strictObject({
  features: z.array(MonitoredFeatureSchema).max(16),
  /** The output whose score decides (e.g. speech probability) and the threshold it is read at. */
  decision: z.strictObject({ tensor: z.string().max(128), threshold: FiniteNumber }).optional(),
});
export type MonitoringSpec = z.infer<typeof MonitoringSpecSchema>;

export const QuantizationSchema = z.strictObject({
  method: z.enum(['none', 'int8', 'uint8', 'uint16', 'float16']),
  perChannel: z.boolean().optional(),
});

const CardText = z.string().min(1).max(4096);
const MetricValue = z.strictObject({
  metric: z.string().min(1).max(64),
  value: FiniteNumber,
  /** The data it was measured on (a name or a hash). */
  dataset: z.string().min(1).max(256).optional(),
});

/**
 * A structured model card: what the model is for, where it fails, what it learned from and how it
 * scored, overall and per segment (e.g. per device class or language). Signed with the release,
 * so what operators read is what the publisher said.
 */
export const ModelCardSchema = z.strictObject({
  intendedUse: CardText.optional(),
  limitations: CardText.optional(),
  trainingData: CardText.optional(),
  evaluation: z.array(MetricValue).max(64).optional(),
  segments: z
    .array(
      z.strictObject({ segment: z.string().min(1).max(128), results: z.array(MetricValue).min(1).max(32) }),
    )
    .max(64)
    .optional(),
});
export type ModelCard = z.infer<typeof ModelCardSchema>;

/**
 * Where the model came from, as the publisher says: nothing here is checked by anyone (training
 * code and data are not uploaded), so every reader must show it as self-reported. `parent` is a
 * version of the same model this one was derived from (fine-tuned, re-quantized).
 */
export const ReleaseLineageSchema = z.strictObject({
  trainingCode: z.string().min(1).max(512).optional(),
  data: z.string().min(1).max(512).optional(),
  hyperparameters: z
    .record(z.string().max(64), z.union([FiniteNumber, z.string().max(256), z.boolean()]))
    .refine((r) => Object.keys(r).length <= 64, 'at most 64 hyperparameters')
    .optional(),
  parent: SemVer.optional(),
});
export type ReleaseLineage = z.infer<typeof ReleaseLineageSchema>;

/** What a publisher signs: the model's bytes and contract. Rollout decisions are not in here. */
export const ReleaseSchema = z.strictObject({
  type: z.literal('edgeship/release'),
  model: Name,
  version: SemVer,
  format: z.enum(['onnx', 'tfjs']),
  /** onnx: the .onnx graph first, then any external-data files it names; tfjs: model.json first, then its weight shards. */
  files: z.array(FileEntrySchema).min(1).max(64),
  quantization: QuantizationSchema,
  inputs: z.array(TensorSpecSchema).min(1).max(32),
  outputs: z.array(TensorSpecSchema).min(1).max(32),
  preprocessing: z.array(PreprocessStepSchema).max(16),
  postprocessing: z.array(PostprocessStepSchema).max(16),
  monitoring: MonitoringSpecSchema,
  minRuntimeVersion: SemVer,
  createdAt: IsoTime,
  /** Optional (added later): absent from older releases, whose signatures stay valid. */
  modelCard: ModelCardSchema.optional(),
  lineage: ReleaseLineageSchema.optional(),
});
export type Release = z.infer<typeof ReleaseSchema>;
export const SignedReleaseSchema = signedSchema(ReleaseSchema);
export type SignedRelease = Signed<Release>;

/** A release's identity, also used as its key in stores and telemetry. */
export function releaseId(release: Pick<Release, 'model' | 'version'>): string {
  return `${release.model}@${release.version}`;
}
