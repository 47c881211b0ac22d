import { MAX_SHARE_BPS, SEGMENT_DIMENSIONS } from '@edgeship/protocol';
import { z } from '@hono/zod-openapi';
import { Name, SemVer, Sha256Hex } from './wire-schemas.ts';

/** Request and response shapes of the admin API; the OpenAPI document is generated from these. */

export const MAX_JSON_BODY = 1024 * 1024;
export const MAX_CHUNK_BODY = 16 * 1024 * 1024;
/** The latest time a query may name (2100-01-01): far enough, and every step stays a valid Date. */
export const MAX_TIME_MS = Date.UTC(2100, 0, 1);

const encoder = new TextEncoder();
// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Free text bounded in UTF-8 bytes (what the database and the wire store), not UTF-16 code
 * units, well-formed (a lone surrogate, `"\ud800"` in JSON, has no UTF-8 form, so a driver would
 * store U+FFFD instead of what was sent), and without NUL.
 */
export const Utf8Text = (maxBytes: number) =>
  z
    .string()
    .max(maxBytes)
    .refine((s) => !LONE_SURROGATE.test(s), 'not valid Unicode (a lone surrogate)')
    // PostgreSQL's text type cannot hold U+0000; refused on both databases, so they agree.
    .refine((s) => !s.includes('\u0000'), 'contains a NUL character')
    .refine((s) => encoder.encode(s).length <= maxBytes, `at most ${maxBytes} bytes of UTF-8`);

/**
 * A free-form JSON object. Documented as `additionalProperties: true`: zod-to-openapi would
 * otherwise write `{ nullable: true }` without a `type` for the unknown values (invalid OpenAPI 3.0).
 */
export const JsonObject = z.record(z.string(), z.unknown()).openapi({ additionalProperties: true });

/** Raw bytes (application/octet-stream), documented as OpenAPI's binary string. */
export const BinarySchema = z.custom<Uint8Array>(() => true).openapi({ type: 'string', format: 'binary' });

export const ErrorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string() }) })
  .openapi('Error');

export const MissingChunksBodySchema = z.strictObject({ hashes: z.array(Sha256Hex).min(1).max(65_536) });

export const ShareBps = z.int().min(0).max(MAX_SHARE_BPS);

export const ReasonBodySchema = z.strictObject({ reason: Utf8Text(1000).min(1) });
export const RolloutIdParams = z.object({ id: z.uuid() });
// Names, not any string: a NUL byte reaching PostgreSQL is an error there (a 500, once).
export const ChannelParams = z.object({ app: Name, channel: Name });
export const ChannelModelParams = z.object({ app: Name, channel: Name, model: Name });
export const ReleaseParams = z.object({ model: Name, version: SemVer });

export const RolloutStateSchema = z.enum(['active', 'halted', 'promoted', 'rolled_back', 'superseded']);

export const RolloutFields = z.object({
  id: z.string(),
  app: z.string(),
  channel: z.string(),
  model: z.string(),
  release: z.string(),
  control: z.string().nullable(),
  mode: z.enum(['canary', 'shadow']),
  shareBps: z.number(),
  salt: z.string(),
  state: RolloutStateSchema,
  reason: z.string().nullable(),
  createdBy: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** Segments left out of the rollout by the channel's policy (signed into the manifest). */
  excludedSegments: z
    .array(z.object({ dimension: z.enum(SEGMENT_DIMENSIONS), value: z.string() }))
    .optional(),
  /** An experiment's treatment arms (signed into the manifest): `release` is the first, `shareBps` their sum. */
  arms: z.array(z.object({ release: z.string(), shareBps: z.number() })).optional(),
});

export const RolloutSchema = RolloutFields.openapi('Rollout');

export const AuditEntrySchema = z
  .object({
    id: z.number(),
    at: z.string(),
    actor: z.string(),
    action: z.string(),
    app: z.string().nullable(),
    channel: z.string().nullable(),
    model: z.string().nullable(),
    details: JsonObject,
  })
  .openapi('AuditEntry');

export const AuditQuerySchema = z.object({
  app: Name.optional(),
  channel: Name.optional(),
  model: Name.optional(),
  before: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export const TokenRoleSchema = z.enum(['admin', 'publisher', 'operator', 'viewer']);
/** A person's (or a service's) name: it is what the audit trail shows for everything the token does. */
export const TokenName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9._@-]*$/, 'lowercase letters, digits, dot, dash, underscore, @');
export const MAX_TOKEN_DAYS = 3650;

export const CreateTokenBodySchema = z
  .strictObject({
    name: TokenName,
    role: TokenRoleSchema,
    /** Days until the token expires (default 90); null: never. */
    expiresInDays: z.int().min(1).max(MAX_TOKEN_DAYS).nullable().default(90),
  })
  .openapi('CreateToken');

export const TokenIdParams = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[a-z0-9-]+$/, 'a token id'),
});

export const TokenSummarySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    role: TokenRoleSchema,
    state: z.enum(['active', 'expired', 'revoked']),
    createdAt: z.string(),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
  })
  .openapi('TokenSummary');

export const CreatedTokenSchema = TokenSummarySchema.extend({
  /** The bearer token itself: shown in this answer only, stored as its SHA-256. */
  token: z.string(),
}).openapi('CreatedToken');
