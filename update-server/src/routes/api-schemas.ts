import { MAX_SHARE_BPS, Name, SemVer, Sha256Hex, SignedReleaseSchema } from '@edgeship/protocol';
import { z } from '@hono/zod-openapi';

/** Request and response shapes of the admin API; the OpenAPI document is generated from these. */

export const MAX_JSON_BODY = 1024 * 1024;
export const MAX_CHUNK_BODY = 16 * 1024 * 1024;

export const ErrorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string() }) })
  .openapi('Error');

export const LineageSchema = z.strictObject({
  sourceCommit: z.string().max(64).optional(),
  datasetHash: z.string().max(128).optional(),
  parameters: z.record(z.string().max(64), z.unknown()).optional(),
  parent: z.string().max(130).optional(),
});

export const PublishBodySchema = z
  .strictObject({
    release: SignedReleaseSchema,
    metrics: z.record(z.string().max(64), z.number()).optional(),
    lineage: LineageSchema.optional(),
    modelCard: z
      .string()
      .max(64 * 1024)
      .optional(),
  })
  .openapi('PublishRelease');

export const MissingChunksBodySchema = z.strictObject({ hashes: z.array(Sha256Hex).min(1).max(65_536) });

export const ShareBps = z.int().min(0).max(MAX_SHARE_BPS);

export const CreateRolloutBodySchema = z
  .strictObject({
    app: Name,
    channel: Name,
    model: Name,
    release: SemVer,
    shareBps: ShareBps,
    mode: z.enum(['canary', 'shadow']).optional(),
    control: SemVer.nullable().optional(),
  })
  .openapi('CreateRollout');

export const ShareBodySchema = z.strictObject({ shareBps: ShareBps });
export const ReasonBodySchema = z.strictObject({ reason: z.string().min(1).max(500) });
export const PromoteReleaseBodySchema = z.strictObject({ release: SemVer });

export const RolloutIdParams = z.object({ id: z.uuid() });
export const ChannelModelParams = z.object({ app: Name, channel: Name, model: Name });
export const ReleaseParams = z.object({ model: Name, version: SemVer });

export const RolloutSchema = z
  .object({
    id: z.string(),
    app: z.string(),
    channel: z.string(),
    model: z.string(),
    release: z.string(),
    control: z.string().nullable(),
    mode: z.enum(['canary', 'shadow']),
    shareBps: z.number(),
    salt: z.string(),
    state: z.enum(['active', 'halted', 'promoted', 'rolled_back', 'superseded']),
    reason: z.string().nullable(),
    createdBy: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Rollout');

export const ReleaseSummarySchema = z
  .object({
    model: z.string(),
    version: z.string(),
    format: z.enum(['onnx', 'tfjs']),
    stage: z.enum(['staging', 'production', 'archived']),
    totalBytes: z.number(),
    metrics: z.record(z.string(), z.number()),
    lineage: z.record(z.string(), z.unknown()),
    createdBy: z.string(),
    createdAt: z.string(),
  })
  .openapi('ReleaseSummary');

export const AuditEntrySchema = z
  .object({
    id: z.number(),
    at: z.string(),
    actor: z.string(),
    action: z.string(),
    app: z.string().nullable(),
    channel: z.string().nullable(),
    model: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
  })
  .openapi('AuditEntry');

export const AuditQuerySchema = z.object({
  app: Name.optional(),
  channel: Name.optional(),
  model: Name.optional(),
  before: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export const RolloutQuerySchema = z.object({
  app: Name.optional(),
  channel: Name.optional(),
  model: Name.optional(),
  state: z.enum(['active', 'halted', 'promoted', 'rolled_back', 'superseded']).optional(),
});
