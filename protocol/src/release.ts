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
});
export type MonitoringSpec = z.infer<typeof MonitoringSpecSchema>;

export const QuantizationSchema = z.strictObject({
  method: z.enum(['none', 'int8', 'uint8', 'uint16', 'float16']),
  perChannel: z.optional(z.boolean()),
});

/** What a publisher signs: the model's bytes and contract. Rollout decisions are not in here. */
export const ReleaseSchema = z.strictObject({
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
  minRuntimeVersion: SemVer,
  createdAt: IsoTime,
});
export type Release = z.infer<typeof ReleaseSchema>;
export const SignedReleaseSchema = signedSchema(ReleaseSchema);
export type SignedRelease = Signed<Release>;

/** A release's identity, also used as its key in stores and telemetry. */
export function releaseId(release: Pick<Release, 'model' | 'version'>): string {
  return `${release.model}@${release.version}`;
}
