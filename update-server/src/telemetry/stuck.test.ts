// Devices stuck on old versions, through the fleet API over real HTTP, on SQLite and PostgreSQL:
// each device's latest report against what its rollout bucket should run, after a grace period.
import { rolloutBucket, seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { createTestSchema, type TestSchema } from '../storage/registry.suite.ts';
import { compareSemver } from './stuck.ts';
import { makeBatch, makeRecord, newInstalls, postBatch } from './testing.ts';

const MODEL = 'stk';
const WINDOW_SEC = 1;
const nextWindow = () => new Promise((r) => setTimeout(r, WINDOW_SEC * 1000 + 100));

describe('compareSemver', () => {
  it('orders by SemVer precedence', () => {
    const ordered = [
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0',
      '1.2.0',
      '1.10.0',
    ];
    for (let i = 0; i + 1 < ordered.length; i++) {
      expect(compareSemver(ordered[i]!, ordered[i + 1]!), `${ordered[i]} < ${ordered[i + 1]}`).toBe(-1);
      expect(compareSemver(ordered[i + 1]!, ordered[i]!)).toBe(1);
    }
    expect(compareSemver('1.0.0+build.1', '1.0.0')).toBe(0);
  });
});

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`stuck devices on ${dialect}`, () => {
    let t: TestServer;
    let schema: TestSchema | undefined;

    beforeAll(async () => {
      schema = dialect === 'postgres' ? await createTestSchema() : undefined;
      t = await startTestServer({
        databaseUrl: schema?.url,
        telemetry: { windowSec: WINDOW_SEC, deviceCap: { batchesPerWindow: 20, inferencesPerWindow: 1e6 } },
      });
      for (const version of ['1.0.0', '1.1.0', '1.2.0', '1.3.0']) {
        await publish(t, seededBytes(3000, Number(version.at(2)) + 40), { model: MODEL, version });
      }
    }, 60_000);
    afterAll(async () => {
      await t?.stop();
      await schema?.drop();
    });

    const report = (device: string, version: string) =>
      postBatch(
        t.server.url,
        makeBatch(device, [makeRecord({ model: MODEL, version, latenciesMs: [5, 6, 7] })]),
        { from: `127.90.${device.charCodeAt(0) % 200}.1` },
      ).then((r) => expect(r.status).toBe(202));
    const fleet = (grace: number) =>
      t.viewer.fleet({ app: 'demo-app', channel: 'stable', model: MODEL, grace }).then((f) => {
        expect(f.stuck.map((s) => s.model)).toEqual([MODEL]);
        return { ...f, stuck: f.stuck[0]! };
      });

    it('counts devices whose latest report is older than production after the grace period, per version', async () => {
      await t.operator.promoteRelease('demo-app', 'stable', MODEL, '1.0.0');
      const devices = newInstalls(10);
      for (const d of devices) await report(d, '1.0.0');
      await t.operator.promoteRelease('demo-app', 'stable', MODEL, '1.1.0');
      await nextWindow();
      // 6 updated, 3 still on 1.0.0, 1 caught up in a later window; its latest report counts.
      for (const d of devices.slice(0, 6)) await report(d, '1.1.0');
      for (const d of devices.slice(6)) await report(d, '1.0.0');
      await nextWindow();
      await report(devices[9]!, '1.1.0');

      const { stuck } = await fleet(0);
      expect(stuck).toMatchObject({
        production: '1.1.0',
        rollout: null,
        judged: 10,
        stuck: 3,
        byVersion: { '1.0.0': 3 },
      });
      expect(stuck.share).toBeCloseTo(0.3, 10);
      // Within the grace period nobody is judged yet.
      expect((await fleet(3600)).stuck).toMatchObject({ judged: 0, stuck: 0, share: null, graceSec: 3600 });
      // Versions in use over time (1 s windows over the last minute): 1.0.0 alone first, then 1.1.0.
      const series = await t.viewer.fleet({
        app: 'demo-app',
        channel: 'stable',
        model: MODEL,
        since: new Date(Date.now() - 60_000).toISOString(),
        step: 1,
      });
      const versionsPerWindow = series.windows.map((w) => w.versions.map((v) => v.version));
      expect(versionsPerWindow.length).toBeGreaterThanOrEqual(3);
      expect(versionsPerWindow[0]).toEqual(['1.0.0']);
      expect(versionsPerWindow.at(-1)).toEqual(['1.1.0']);
      expect(series.windows[0]!.versions[0]!.devices).toBeGreaterThan(0);
    }, 60_000);

    it("counts canary devices still on production as behind their bucket's release", async () => {
      const rollout = await t.operator.createRollout({
        app: 'demo-app',
        channel: 'stable',
        model: MODEL,
        release: '1.2.0',
        shareBps: 5000,
      });
      await nextWindow();
      const devices = newInstalls(16);
      const inside: string[] = [];
      for (const d of devices) {
        if ((await rolloutBucket(rollout.salt, d)) < rollout.shareBps) inside.push(d);
        await report(d, '1.1.0');
      }
      expect(inside.length).toBeGreaterThan(0);
      expect(inside.length).toBeLessThan(devices.length);
      const { stuck } = await fleet(0);
      // The 16 new ones are all judged; of the 10 from before, only those outside the canary's
      // buckets (their target, production, is older than their last report's window).
      expect(stuck.rollout).toEqual({ release: '1.2.0', shareBps: 5000 });
      expect(stuck.byVersion['1.1.0']).toBe(inside.length);
      expect(stuck.judged).toBeGreaterThanOrEqual(16);
      expect(stuck.judged).toBeLessThan(26);
      await t.operator.halt(rollout.id, 'test done');
      // Halted: the canary's devices should run production again, and 1.1.0 is production.
      expect((await fleet(0)).stuck.byVersion['1.1.0']).toBeUndefined();
    }, 60_000);

    it("judges each device of a multi-arm rollout against its own arm's release", async () => {
      const rollout = await t.server.service.createRollout(
        { name: 'test' },
        {
          app: 'demo-app',
          channel: 'stable',
          model: MODEL,
          release: '1.3.0',
          shareBps: 8000,
          arms: [
            { release: '1.3.0', shareBps: 4000 },
            { release: '1.2.0', shareBps: 4000 },
          ],
        },
      );
      await nextWindow();
      const devices = newInstalls(24);
      const firstArm: string[] = [];
      for (const d of devices) {
        if ((await rolloutBucket(rollout.salt, d)) < 4000) firstArm.push(d);
        // Every device runs the second arm's release.
        await report(d, '1.2.0');
      }
      expect(firstArm.length).toBeGreaterThan(0);
      expect(firstArm.length).toBeLessThan(devices.length);
      const { stuck } = await fleet(0);
      // Behind only in the first arm (target 1.3.0); the second arm's devices run their target, and
      // those outside the arms run something newer than production.
      expect(stuck.byVersion['1.2.0']).toBe(firstArm.length);
    }, 60_000);
  });
}
