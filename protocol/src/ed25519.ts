// The one Ed25519 verify that manifests, key sets and telemetry batches go through (inside the
// package only: index.ts does not export it).
import { asBufferSource, fromBase64Url } from './bytes.ts';

export const ED25519 = { name: 'Ed25519' } as const;

/**
 * True when `sig` is the Ed25519 signature over `message` by the raw public key `publicKey` (both
 * base64url); never throws: a malformed key or signature, a key of the wrong length or one that is
 * no point on the curve is simply not a valid signature.
 */
export async function verifyEd25519(publicKey: string, sig: string, message: Uint8Array): Promise<boolean> {
  try {
    const raw = asBufferSource(fromBase64Url(publicKey));
    const key = await crypto.subtle.importKey('raw', raw, ED25519, false, ['verify']);
    return await crypto.subtle.verify(
      ED25519,
      key,
      asBufferSource(fromBase64Url(sig)),
      asBufferSource(message),
    );
  } catch {
    return false;
  }
}
