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
    expect(verifyBatchSignature(good.deviceId, good.body, good.sig)).toBe(true); // from the key cache
  });
});
