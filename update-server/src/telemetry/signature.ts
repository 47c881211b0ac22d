import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { DEVICE_ID_PATTERN, telemetrySignedBytes } from '@edgeship/protocol';

// Installs whose public key stays parsed; an install sends a batch every few minutes.
export const MAX_KEYS = 20_000;
export const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{86}$/;
const keys = new Map<string, KeyObject>();

/**
 * The server's check of a batch signature: what protocol's `verifyTelemetryBody` decides (same
 * Ed25519 over the same context-prefixed bytes, OpenSSL under both), on node:crypto with the
 * install's parsed key kept. WebCrypto imports the key and settles a promise per batch, about
 * twice the CPU of the verify itself; this is the one public-key operation a batch costs.
 */
export function verifyBatchSignature(
  deviceId: string,
  body: Uint8Array,
  signature: string | undefined,
): boolean {
  if (!signature || !DEVICE_ID_PATTERN.test(deviceId) || !SIGNATURE_PATTERN.test(signature)) return false;
  try {
    return verify(
      null,
      telemetrySignedBytes(body),
      installKey(deviceId),
      Buffer.from(signature, 'base64url'),
    );
  } catch {
    return false; // not a point on the curve
  }
}

function installKey(deviceId: string): KeyObject {
  let key = keys.get(deviceId);
  if (!key) {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: deviceId }, format: 'jwk' });
    if (keys.size >= MAX_KEYS) keys.delete(keys.keys().next().value!);
    keys.set(deviceId, key);
  }
  return key;
}
