// zod/mini, not classic zod: these schemas ship in every device's worker (about 5 kB, not 30).
import * as z from 'zod/mini';

// Hard bounds on every field: a document that parses is also small.
export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** A release document: 64 files of up to 65,536 chunks would exceed it; 2 GB in 256 KiB chunks is ~0.8 MB. */
export const MAX_RELEASE_DOCUMENT_BYTES = 8 * 1024 * 1024;
export const MAX_NAME = 64;

export const Sha256Hex = z.string().check(z.regex(/^[0-9a-f]{64}$/, 'a lowercase hex SHA-256'));
export const Name = z
  .string()
  .check(
    z.minLength(1),
    z.maxLength(MAX_NAME),
    z.regex(/^[a-z0-9][a-z0-9._-]*$/, 'lowercase letters, digits, dot, dash, underscore'),
  );
// Semantic Versioning 2.0.0, section 2 and 9 (pre-release); no build metadata.
export const SemVer = z
  .string()
  .check(
    z.maxLength(64),
    z.regex(
      /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/,
      'a semver version',
    ),
  );
export const IsoTime = z.iso.datetime({ offset: false });
export const Base64Url = z.string().check(z.maxLength(256), z.regex(/^[A-Za-z0-9_-]*$/));

export const PublicKeyEntrySchema = z.strictObject({ keyId: Sha256Hex, publicKey: Base64Url });
export const SignatureSchema = z.strictObject({ keyId: Sha256Hex, sig: Base64Url });

export function signedSchema<T extends z.ZodMiniType>(inner: T) {
  return z.strictObject({
    signed: inner,
    signatures: z.array(SignatureSchema).check(z.minLength(1), z.maxLength(16)),
  });
}
