import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestTrust, makeTestRelease, type TestTrust } from '../../test/support/trust.ts';
import { chooseRelease, inRollout, rolloutArm, rolloutArms, rolloutBucket } from './bucketing.ts';
import type { ModelEntry } from './manifest.ts';
import { deviceSegmentValues } from './segments.ts';
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

  it('keeps a device in an excluded segment on production, whatever its bucket', async () => {
    const canary = await entry('canary', 10_000);
    canary.rollout!.excludedSegments = [
      { dimension: 'browser', value: 'firefox' },
      { dimension: 'backend', value: 'webgpu' },
    ];
    const firefox = deviceSegmentValues({ browser: 'firefox', browserMajor: 133 }, '0.4.1');
    const chrome = deviceSegmentValues({ browser: 'chrome', browserMajor: 131 }, '0.4.1');
    for (let i = 0; i < 20; i++) {
      const excluded = await chooseRelease(canary, `device-${i}`, firefox);
      expect(excluded).toMatchObject({ active: { version: '1.0.0' }, inRollout: false });
      expect(excluded.excludedBy).toEqual({ dimension: 'browser', value: 'firefox' });
      expect((await chooseRelease(canary, `device-${i}`, chrome)).active!.version).toBe('1.1.0');
      // The backend counts once the device knows it (an engine runs).
      expect(
        (await chooseRelease(canary, `device-${i}`, { ...chrome, backend: 'webgpu' })).active!.version,
      ).toBe('1.0.0');
      expect(
        (await chooseRelease(canary, `device-${i}`, { ...chrome, backend: 'wasm' })).active!.version,
      ).toBe('1.1.0');
      // A device that says nothing of itself is judged by its bucket alone.
      expect((await chooseRelease(canary, `device-${i}`)).active!.version).toBe('1.1.0');
    }
    const shadow = await entry('shadow', 10_000);
    shadow.rollout!.excludedSegments = [{ dimension: 'os', value: 'android' }];
    const android = deviceSegmentValues({ os: 'android' }, '0.4.1');
    expect(await chooseRelease(shadow, 'device-1', android)).toMatchObject({
      shadow: null,
      inRollout: false,
    });
  });

  it('sends everybody to production when a rollout is halted', async () => {
    const halted = await entry('canary', 0);
    for (let i = 0; i < 20; i++)
      expect((await chooseRelease(halted, `device-${i}`)).active!.version).toBe('1.0.0');
  });

  it('chooses as before for a rollout without arms: inside exactly when the bucket is below the share', async () => {
    const canary = await entry('canary', 2_500);
    for (let i = 0; i < 200; i++) {
      const choice = await chooseRelease(canary, `device-${i}`);
      const inside = inRollout(await rolloutBucket(SALT, `device-${i}`), 2_500);
      expect(choice).toMatchObject({ inRollout: inside, active: { version: inside ? '1.1.0' : '1.0.0' } });
      expect(choice.arm).toBe(inside ? 0 : undefined);
    }
  });

  it("gives each device of a multi-arm rollout its bucket's arm, and production outside the arms", async () => {
    const canary = await entry('canary', 7_500);
    canary.releases.push(await releaseRef(await makeTestRelease(trust, { version: '1.2.0' })));
    canary.releases.push(await releaseRef(await makeTestRelease(trust, { version: '1.3.0' })));
    canary.rollout!.arms = [
      { release: '1.1.0', shareBps: 2_500 },
      { release: '1.2.0', shareBps: 2_500 },
      { release: '1.3.0', shareBps: 2_500 },
    ];
    const seen = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const choice = await chooseRelease(canary, `device-${i}`);
      const bucket = await rolloutBucket(SALT, `device-${i}`);
      const expected = bucket < 7_500 ? `1.${Math.floor(bucket / 2_500) + 1}.0` : '1.0.0';
      expect(choice.active!.version).toBe(expected);
      expect(choice.inRollout).toBe(bucket < 7_500);
      if (choice.inRollout) expect(canary.rollout!.arms![choice.arm!]!.release).toBe(expected);
      seen.set(expected, (seen.get(expected) ?? 0) + 1);
      // Deterministic: the same install gets the same arm at every check.
      expect((await chooseRelease(canary, `device-${i}`)).active!.version).toBe(expected);
    }
    // About a quarter each (binomial sd ~8.7 of 100).
    for (const version of ['1.0.0', '1.1.0', '1.2.0', '1.3.0'])
      expect(Math.abs(seen.get(version)! - 100)).toBeLessThan(40);
    // An excluded segment runs production, whichever arm its bucket is in.
    canary.rollout!.excludedSegments = [{ dimension: 'browser', value: 'firefox' }];
    const firefox = deviceSegmentValues({ browser: 'firefox', browserMajor: 133 }, '0.4.1');
    for (let i = 0; i < 40; i++)
      expect((await chooseRelease(canary, `device-${i}`, firefox)).active!.version).toBe('1.0.0');
  });
});

describe('rolloutArm', () => {
  const shares = fc.array(fc.nat({ max: 10_000 }), { minLength: 1, maxLength: 4 }).map((raw) => {
    // Scaled down to sum at most 10,000.
    const total = raw.reduce((a, b) => a + b, 0);
    return total <= 10_000 ? raw : raw.map((n) => Math.floor((n * 10_000) / total));
  });

  it('gives the arms disjoint bucket ranges that cover their shares exactly, from bucket 0', () => {
    fc.assert(
      fc.property(shares, (list) => {
        const arms = list.map((shareBps, i) => ({ release: `1.${i}.0`, shareBps }));
        const counts = new Array<number>(arms.length).fill(0);
        const total = list.reduce((a, b) => a + b, 0);
        let last = 0;
        let misplaced = 0;
        for (let bucket = 0; bucket < 10_000; bucket++) {
          const arm = rolloutArm(arms, bucket);
          // Inside exactly the first `total` buckets, and the arms in order (contiguous ranges).
          if (arm >= 0 !== bucket < total || (arm >= 0 && arm < last)) misplaced += 1;
          if (arm < 0) continue;
          last = arm;
          counts[arm]! += 1;
        }
        expect(misplaced).toBe(0);
        expect(counts).toEqual(list);
      }),
      { numRuns: 200 },
    );
  });

  it('reads a rollout without arms as one arm of its release and share', () => {
    expect(rolloutArms({ release: '1.1.0', shareBps: 300 })).toEqual([{ release: '1.1.0', shareBps: 300 }]);
    const one = rolloutArms({ release: '1.1.0', shareBps: 300 });
    for (const bucket of [0, 299, 300, 9_999])
      expect(rolloutArm(one, bucket) === 0).toBe(inRollout(bucket, 300));
  });
});
