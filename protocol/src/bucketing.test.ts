import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestTrust, makeTestRelease, type TestTrust } from '../../test/support/trust.ts';
import { chooseRelease, inRollout, rolloutBucket } from './bucketing.ts';
import type { ModelEntry } from './manifest.ts';
import { releaseRef } from './verify-release.ts';

const SALT = '00112233445566778899aabbccddeeff';
const hexSalt = fc
  .uint8Array({ minLength: 16, maxLength: 16 })
  .map((b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(''));

describe('rolloutBucket', () => {
  it('spreads device ids uniformly over 0..9999 (chi-square, 100,000 ids)', async () => {
    const bins = 100; // 100 bins of 100 buckets each: 1,000 ids expected per bin
    const counts = new Array<number>(bins).fill(0);
    const ids = 100_000;
    for (let i = 0; i < ids; i++) {
      const bucket = await rolloutBucket(SALT, `device-${i}`);
      counts[Math.floor(bucket / 100)]! += 1;
    }
    const expected = ids / bins;
    const chiSquare = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    // Critical value of chi-square with 99 degrees of freedom at p = 0.001 is 148.23.
    expect(chiSquare).toBeLessThan(148.23);
    expect(Math.min(...counts)).toBeGreaterThan(0);
  });

  it('keeps a device inside the rollout at every share above the one that let it in', async () => {
    await fc.assert(
      fc.asyncProperty(
        hexSalt,
        fc.string({ minLength: 8, maxLength: 40 }),
        fc.nat({ max: 10_000 }),
        fc.nat({ max: 10_000 }),
        async (salt, id, a, b) => {
          const bucket = await rolloutBucket(salt, id);
          expect(bucket).toBeGreaterThanOrEqual(0);
          expect(bucket).toBeLessThan(10_000);
          const [low, high] = a <= b ? [a, b] : [b, a];
          if (inRollout(bucket, low)) expect(inRollout(bucket, high)).toBe(true);
        },
      ),
    );
  });

  it('lets in about the share of the fleet that the rollout names', async () => {
    let inside = 0;
    for (let i = 0; i < 20_000; i++) if (inRollout(await rolloutBucket(SALT, `d-${i}`), 1_000)) inside += 1;
    // 10% of 20,000 is 2,000; the binomial standard deviation is about 42.
    expect(Math.abs(inside - 2_000)).toBeLessThan(250);
  });

  it('gives independent buckets under different salts', async () => {
    let same = 0;
    for (let i = 0; i < 2_000; i++) {
      const a = await rolloutBucket(SALT, `d-${i}`);
      const b = await rolloutBucket('ffeeddccbbaa99887766554433221100', `d-${i}`);
      if (inRollout(a, 5_000) === inRollout(b, 5_000)) same += 1;
    }
    expect(Math.abs(same - 1_000)).toBeLessThan(150);
  });
});

describe('chooseRelease', () => {
  let trust: TestTrust;
  beforeAll(async () => {
    trust = await createTestTrust();
  });

  async function entry(mode: 'canary' | 'shadow', shareBps: number): Promise<ModelEntry> {
    return {
      name: 'demo',
      production: '1.0.0',
      rollout: { id: 'r1', release: '1.1.0', shareBps, salt: SALT, control: '1.0.0', mode },
      releases: [
        await releaseRef(await makeTestRelease(trust)),
        await releaseRef(await makeTestRelease(trust, { version: '1.1.0' })),
      ],
    };
  }

  it('gives the candidate to devices inside a canary and production to the rest', async () => {
    const canary = await entry('canary', 5_000);
    const versions = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const choice = await chooseRelease(canary, `device-${i}`);
      versions.add(choice.active!.version);
      expect(choice.active!.version).toBe(choice.inRollout ? '1.1.0' : '1.0.0');
    }
    expect(versions).toEqual(new Set(['1.0.0', '1.1.0']));
  });

  it('never gives a shadow candidate to callers, only as a shadow', async () => {
    const shadow = await entry('shadow', 10_000);
    const choice = await chooseRelease(shadow, 'device-1');
    expect(choice.active!.version).toBe('1.0.0');
    expect(choice.shadow!.version).toBe('1.1.0');
  });

  it('sends everybody to production when a rollout is halted', async () => {
    const halted = await entry('canary', 0);
    for (let i = 0; i < 20; i++)
      expect((await chooseRelease(halted, `device-${i}`)).active!.version).toBe('1.0.0');
  });
});
