import * as z from 'zod';

// Hard bounds on every field: a document that parses is also small.
export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** A release document: 64 files of up to 65,536 chunks would exceed it; 2 GB in 256 KiB chunks is ~0.8 MB. */
export const MAX_RELEASE_DOCUMENT_BYTES = 8 * 1024 * 1024;
export const MAX_NAME = 64;

export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex SHA-256');
export const Name = z
  .string()
  .min(1)
  .max(MAX_NAME)
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'lowercase letters, digits, dot, dash, underscore');
// Semantic Versioning 2.0.0, section 2 and 9 (pre-release); no build metadata.
export const SemVer = z
  .string()
  .max(64)
  .regex(/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/, 'a semver version');
export const IsoTime = z.iso.datetime({ offset: false });
export const Base64Url = z
  .string()
  .max(256)
  .regex(/^[A-Za-z0-9_-]*$/);

export const PublicKeyEntrySchema = z.strictObject({ keyId: Sha256Hex, publicKey: Base64Url });
export const SignatureSchema = z.strictObject({ keyId: Sha256Hex, sig: Base64Url });

export function signedSchema<T extends z.ZodType>(inner: T) {
  return z.strictObject({ signed: inner, signatures: z.array(SignatureSchema).min(1).max(16) });
}
