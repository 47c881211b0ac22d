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

export const MAX_SHARE_BPS = 10_000;

/**
 * The manifest's layout. 2: releases are named by the hash of their signed document (ReleaseRef)
 * instead of carried inline, so the manifest's size no longer grows with model size.
 */
export const MANIFEST_SCHEMA_VERSION = 2;

/**
 * A staged rollout of one release. Devices whose bucket is below `shareBps` take part;
 * `control` is the release it is measured against (and what everybody else runs). In
 * `shadow` mode taking part means running the candidate beside the control, never instead.
 */
export const RolloutSchema = z.strictObject({
  id: z.string().check(z.minLength(1), z.maxLength(64)),
  release: SemVer,
  shareBps: z.int().check(z.minimum(0), z.maximum(MAX_SHARE_BPS)),
  salt: z.string().check(z.regex(/^[0-9a-f]{32}$/, '16 random bytes, hex')),
  control: z.nullable(SemVer),
  mode: z.enum(['canary', 'shadow']),
});
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
