import { asBufferSource, concatBytes, toBase64Url, utf8 } from './bytes.ts';
import { ED25519, verifyEd25519 } from './ed25519.ts';

/**
 * The per-install telemetry credential: an Ed25519 key pair made on the device, whose raw public
 * key (base64url, 43 characters) *is* the device id, and which signs the exact bytes of each batch
 * it sends. Nobody can send as an install without its private key, and the server needs no secret
 * and no round trip to check one: one verify per batch. Keys are free to make, so what a set of
 * installs may *steer* is decided on the server (update-server/src/canary/evidence.ts).
 */

/** The HTTP header that carries a batch's signature (base64url, 64 bytes). */
export const TELEMETRY_SIGNATURE_HEADER = 'edgeship-signature';

/** A device id is an Ed25519 public key: 32 bytes, base64url without padding. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

// Domain separation: a telemetry signature can never be taken for any other signed document.
const CONTEXT = utf8('edgeship telemetry batch v1\n');

export interface InstallKey {
  deviceId: string;
  /** Non-extractable where the caller asked so (the runtime keeps it that way in IndexedDB). */
  privateKey: CryptoKey;
}

/** Makes a new install key; `extractable` applies to the private half only. */
export async function generateInstallKey(extractable = false): Promise<InstallKey> {
  const pair = (await crypto.subtle.generateKey(ED25519, extractable, ['sign', 'verify'])) as CryptoKeyPair;
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  return { deviceId: toBase64Url(raw), privateKey: pair.privateKey };
}

/** The bytes a batch signature covers: a fixed context, then the request body as sent. */
export function telemetrySignedBytes(body: Uint8Array): Uint8Array {
  return concatBytes(CONTEXT, body);
}

/** Signs a request body exactly as it will be sent. */
export async function signTelemetryBody(key: CryptoKey, body: Uint8Array): Promise<string> {
  const sig = await crypto.subtle.sign(ED25519, key, asBufferSource(telemetrySignedBytes(body)));
  return toBase64Url(new Uint8Array(sig));
}

/** True when `signature` is the install `deviceId`'s signature over `body`; never throws. */
export async function verifyTelemetryBody(
  deviceId: string,
  body: Uint8Array,
  signature: string | undefined,
): Promise<boolean> {
  if (!signature || !DEVICE_ID_PATTERN.test(deviceId) || !/^[A-Za-z0-9_-]{86}$/.test(signature)) return false;
  return verifyEd25519(deviceId, signature, telemetrySignedBytes(body));
}
