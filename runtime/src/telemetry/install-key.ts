import { DEVICE_ID_PATTERN, generateInstallKey, type InstallKey } from '@edgeship/protocol';
import type { ModelStore } from '../store/model-store.ts';

/**
 * The install's telemetry credential, made once and kept in IndexedDB: an Ed25519 key pair whose
 * private half is a non-extractable CryptoKey (stored as the key object itself, so not even this
 * page's scripts can read its bytes) and whose public half is the device id. The device id keys
 * rollout buckets and telemetry, and is random: nothing about the device goes into it.
 */
export async function loadInstallKey(store: ModelStore): Promise<InstallKey> {
  const saved = await store.getMeta('install-key');
  if (saved && saved.privateKey instanceof CryptoKey && DEVICE_ID_PATTERN.test(saved.deviceId)) return saved;
  // Two tabs starting at once may each make one; the last write stays, and both are valid installs.
  const made = await generateInstallKey(false);
  await store.setMeta('install-key', made);
  return made;
}
