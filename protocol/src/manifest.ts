import * as z from 'zod/mini';
import { SignedKeySetSchema } from './keyset.ts';
import {
  IsoTime,
  MAX_RELEASE_DOCUMENT_BYTES,
  Name,
  SemVer,
  Sha256Hex,
  SignatureSchema,
} from './schema-primitives.ts';
import { ExcludedSegmentSchema, MAX_EXCLUDED_SEGMENTS } from './segments.ts';

export const MAX_SHARE_BPS = 10_000;

/**
 * The manifest's layout. 2: releases are named by the hash of their signed document (ReleaseRef)
 * instead of carried inline, so the manifest's size no longer grows with model size.
 */
export const MANIFEST_SCHEMA_VERSION = 2;

/** At most this many treatment arms in one rollout (an experiment's control is production). */
export const MAX_ROLLOUT_ARMS = 4;

/** One treatment arm of a multi-arm rollout: its release and its share of the bucket range. */
export const RolloutArmSchema = z.strictObject({
  release: SemVer,
  shareBps: z.int().check(z.minimum(0), z.maximum(MAX_SHARE_BPS)),
});
export type RolloutArm = z.infer<typeof RolloutArmSchema>;

/**
 * A staged rollout of one release. Devices whose bucket is below `shareBps` take part;
 * `control` is the release it is measured against (and what everybody else runs). In
 * `shadow` mode taking part means running the candidate beside the control, never instead.
 */
export const RolloutSchema = z
  .strictObject({
    id: z.string().check(z.minLength(1), z.maxLength(64)),
    release: SemVer,
    shareBps: z.int().check(z.minimum(0), z.maximum(MAX_SHARE_BPS)),
    salt: z.string().check(z.regex(/^[0-9a-f]{32}$/, '16 random bytes, hex')),
    control: z.nullable(SemVer),
    mode: z.enum(['canary', 'shadow']),
    /**
     * Segments the rollout leaves out (the channel's policy, after a regression confined to them):
     * a device in one runs what devices outside the rollout run, whatever its bucket. Signed with
     * the rest; absent when empty, so a manifest without exclusions reads as before.
     */
    excludedSegments: z.optional(
      z.array(ExcludedSegmentSchema).check(z.minLength(1), z.maxLength(MAX_EXCLUDED_SEGMENTS)),
    ),
    /**
     * An experiment's treatment arms (2 to MAX_ROLLOUT_ARMS, canary mode only): arm i takes the
     * buckets from the sum of the shares before it, for its own share (bucketing.ts rolloutArm).
     * `release` is the first arm's and `shareBps` their sum, so a reader that knows only those
     * fields sees the right share in the rollout. Absent: one arm, `release` at `shareBps`, the
     * layout before arms, so older manifests verify and choose as before.
     */
    arms: z.optional(z.array(RolloutArmSchema).check(z.minLength(2), z.maxLength(MAX_ROLLOUT_ARMS))),
  })
  .check(
    z.refine(
      (r) =>
        !r.arms ||
        (r.mode === 'canary' &&
          r.arms[0]!.release === r.release &&
          r.arms.reduce((n, a) => n + a.shareBps, 0) === r.shareBps &&
          new Set(r.arms.map((a) => a.release)).size === r.arms.length &&
          r.arms.every((a) => a.release !== r.control)),
      'arms: canary mode, distinct releases other than the control, the first is `release`, shares sum to `shareBps`',
    ),
  );
export type Rollout = z.infer<typeof RolloutSchema>;

/**
 * An offered release, named by its signed release document: the SHA-256 and length of the
 * document's bytes as served (`GET /v1/releases/by-hash/<sha256>`, canonical JSON of the signed
 * release). The chunk lists live in that document, fetched only when the release is downloaded;
 * the manifest's signature covers this hash, as TUF's snapshot covers targets metadata (5.6.2).
 */
export const ReleaseRefSchema = z.strictObject({
  version: SemVer,
  sha256: Sha256Hex,
  size: z.int().check(z.minimum(1), z.maximum(MAX_RELEASE_DOCUMENT_BYTES)),
});
export type ReleaseRef = z.infer<typeof ReleaseRefSchema>;

export const ModelEntrySchema = z.strictObject({
  name: Name,
  /** What devices outside the rollout run; null until a release is promoted. */
  production: z.nullable(SemVer),
  rollout: z.nullable(RolloutSchema),
  releases: z.array(ReleaseRefSchema).check(z.maxLength(16)),
});
export type ModelEntry = z.infer<typeof ModelEntrySchema>;

export const ManifestSchema = z.strictObject({
  type: z.literal('edgeship/manifest'),
  schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
  app: Name,
  channel: Name,
  /** Grows with every change, so a device can refuse anything older than it has seen. */
  version: z.int().check(z.minimum(1), z.maximum(Number.MAX_SAFE_INTEGER)),
  /** At most MAX_CLOCK_SKEW_MS ahead of the device's clock (verify-manifest.ts). */
  issuedAt: IsoTime,
  /** After issuedAt, by at most the key set's maxManifestLifetimeSeconds (indefinite freeze). */
  expiresAt: IsoTime,
  models: z.array(ModelEntrySchema).check(z.maxLength(64)),
});
export type Manifest = z.infer<typeof ManifestSchema>;

/** The wire document: the manifest, its online-key signatures, and the key set vouching for them. */
export const ManifestEnvelopeSchema = z.strictObject({
  signed: ManifestSchema,
  signatures: z.array(SignatureSchema).check(z.minLength(1), z.maxLength(16)),
  keySet: SignedKeySetSchema,
});
export type ManifestEnvelope = z.infer<typeof ManifestEnvelopeSchema>;
