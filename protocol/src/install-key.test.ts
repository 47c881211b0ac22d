import { describe, expect, it } from 'vitest';
import { utf8 } from './bytes.ts';
import {
  DEVICE_ID_PATTERN,
  generateInstallKey,
  signTelemetryBody,
  verifyTelemetryBody,
} from './install-key.ts';

describe('install keys', () => {
  it('uses the public key as the device id and verifies its signature over the exact bytes', async () => {
    const key = await generateInstallKey();
    expect(key.deviceId).toMatch(DEVICE_ID_PATTERN);
    expect(key.privateKey.extractable).toBe(false);
    const body = utf8('{"batch":1}');
    const sig = await signTelemetryBody(key.privateKey, body);
    expect(await verifyTelemetryBody(key.deviceId, body, sig)).toBe(true);
  });

  it('refuses a missing signature, another install, and changed bytes', async () => {
    const [a, b] = [await generateInstallKey(), await generateInstallKey()];
    const body = utf8('{"batch":1}');
    const sig = await signTelemetryBody(a.privateKey, body);
    expect(await verifyTelemetryBody(a.deviceId, body, undefined)).toBe(false);
    expect(await verifyTelemetryBody(b.deviceId, body, sig)).toBe(false);
    expect(await verifyTelemetryBody(a.deviceId, utf8('{"batch":2}'), sig)).toBe(false);
    expect(await verifyTelemetryBody('not-a-key', body, sig)).toBe(false);
    expect(await verifyTelemetryBody(a.deviceId, body, 'A'.repeat(86))).toBe(false);
  });
});
