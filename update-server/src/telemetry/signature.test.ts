import { verifyTelemetryBody } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import { verifyBatchSignature } from './signature.ts';
import { signatureCases } from './testing.ts';

describe('batch signatures on the server', () => {
  it('decides as the protocol does: the install, over the exact bytes', async () => {
    const { good, cases } = await signatureCases();
    for (const [deviceId, bytes, signature] of cases) {
      expect(verifyBatchSignature(deviceId, bytes, signature)).toBe(
        await verifyTelemetryBody(deviceId, bytes, signature),
      );
    }
    expect(verifyBatchSignature(good.deviceId, good.body, good.sig)).toBe(true);
  });

  it('refuses a small-order install key, under which one signature fits every body', async () => {
    // The identity point as key, R the identity and S = 0: [S]B = R + [k]A for any message, so a
    // cofactorless check without a small-order test (OpenSSL's, WebCrypto's in Node) accepts it.
    const identity = `AQ${'A'.repeat(41)}`;
    const signature = `AQ${'A'.repeat(84)}`;
    const body = new TextEncoder().encode('{"any":"body"}');
    expect(await verifyTelemetryBody(identity, body, signature)).toBe(true);
    expect(verifyBatchSignature(identity, body, signature)).toBe(false);
  });
});
