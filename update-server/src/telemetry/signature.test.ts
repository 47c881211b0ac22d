import { generateInstallKey, signTelemetryBody, utf8, verifyTelemetryBody } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import { verifyBatchSignature } from './signature.ts';

describe('batch signatures on the server', () => {
  it('decides as the protocol does: the install, over the exact bytes', async () => {
    const [a, b] = [await generateInstallKey(), await generateInstallKey()];
    const body = utf8('{"batch":1}');
    const sig = await signTelemetryBody(a.privateKey, body);
    const cases: Array<[string, Uint8Array, string | undefined]> = [
      [a.deviceId, body, sig],
      [a.deviceId, body, undefined],
      [b.deviceId, body, sig],
      [a.deviceId, utf8('{"batch":2}'), sig],
      ['not-a-key', body, sig],
      [a.deviceId, body, 'A'.repeat(86)],
      [a.deviceId, body, `${sig.slice(0, -2)}AA`],
      // 32 bytes that are no point on the curve
      [`${'_'.repeat(42)}8`, body, sig],
    ];
    for (const [deviceId, bytes, signature] of cases) {
      expect(verifyBatchSignature(deviceId, bytes, signature)).toBe(
        await verifyTelemetryBody(deviceId, bytes, signature),
      );
    }
    expect(verifyBatchSignature(a.deviceId, body, sig)).toBe(true);
    expect(verifyBatchSignature(a.deviceId, body, sig)).toBe(true); // from the key cache
  });
});
