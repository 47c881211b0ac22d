import { randomBytes } from 'node:crypto';
import { rolloutBucket } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import { newInstall } from '../telemetry/testing.ts';
import { rolloutBucketSync } from './bucket.ts';

describe('rolloutBucketSync', () => {
  it("puts every install in the same bucket as the protocol's rolloutBucket", async () => {
    for (let i = 0; i < 300; i++) {
      const salt = randomBytes(16).toString('hex');
      const deviceId = i % 3 === 0 ? `device-${i}-é` : newInstall();
      expect(rolloutBucketSync(salt, deviceId)).toBe(await rolloutBucket(salt, deviceId));
    }
  });
});
