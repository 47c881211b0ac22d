// Segments and shadow verdicts end to end: a real server (SQLite and PostgreSQL) fed signed
// telemetry over real HTTP from many loopback /24s; the canary halts on one regressed browser and
// names it, the fleet API shows the split, and a shadow candidate gets a verdict and a webhook.
import {
  chooseRelease,
  deviceSegmentValues,
  rolloutBucket,
  seededBytes,
  type TelemetryRecord,
  verifyManifest,
} from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../../../test/support/server.ts';
import type { WebhookReceiver } from '../../../test/support/webhook-receiver.ts';
import { governance } from '../admin-client.ts';
import { makeBatch, makeRecord, newInstall, postBatch, shadowRecords } from '../telemetry/testing.ts';
import { type CanaryTestServer, canaryTestServer } from './testing.ts';

const MODEL = 'seg';
const POLICY = { minInstalls: 12, minPrefixes: 4, minSegmentInstalls: 12 };
const CAPS = { maxEventsPerInstall: 10_000, maxInstallsPerPrefix: 8 };

/**
 * 100 inferences: 8 ms and 1% errors, or 16 ms and 8% errors when regressed. Installs differ in
 * speed by at most 3%, under the policy's 5% latency margin: the exclusion judges the rest on its
 * estimates too (canary/exclusion.ts), and a spread near the margin made a healthy rest of random
 * buckets look 5% slower about once in 60 runs.
 */
function report(
  version: string,
  browser: 'chrome' | 'firefox',
  regressed: boolean,
  seed: number,
): TelemetryRecord {
  const errors = regressed ? 8 : 1;
  const ms = (regressed ? 16 : 8) * (1 + (seed % 7) / 200);
  return {
    ...makeRecord({
      model: MODEL,
      version,
      latenciesMs: Array.from({ length: 100 - errors }, (_, i) => ms * (0.8 + (0.4 * i) / 100)),
      errors: { E_HEALTH_CHECK: errors },
      energy: Array.from({ length: 10 }, (_, i) => (i < 100 - errors - 90 ? 10 : 9)),
    }),
    segment: { browser, browserMajor: browser === 'chrome' ? 131 : 133, os: 'windows', deviceClass: 'mid' },
  };
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`segments and shadow verdicts on ${dialect}`, () => {
    let t: TestServer;
    let hooks: WebhookReceiver<Record<string, unknown>>;
    let server: CanaryTestServer | undefined;

    beforeAll(async () => {
      server = await canaryTestServer(
        dialect,
        MODEL,
        {
          // The monitor judges only when a test says so (run()), on all the evidence: judged as
          // telemetry arrived (or by its timer, when a loaded machine makes a test outlast the
          // interval), a halt on the first few installs would name a different split.
          throttleMs: 3_600_000,
          intervalMs: 3_600_000,
          webhook: { baseDelayMs: 50 },
          policy: POLICY,
          caps: CAPS,
          shadow: { minDevices: 10, minCompared: 500 },
        },
        (version) => seededBytes(4000, Number(version.at(2)) + 20),
      );
      ({ t, hooks } = server);
    }, 60_000);
    afterAll(async () => {
      await server?.stop();
    });

    it('halts a canary regressed on one browser only, names the segment, and shows the split', async () => {
      // 160 installs on 20 networks, half Chrome, half Firefox, each seen before the rollout.
      const fleet = Array.from({ length: 160 }, (_, i) => ({
        id: newInstall(),
        from: `127.${30 + (i % 20)}.0.${1 + Math.floor(i / 20)}`,
        browser: (i % 2 === 0 ? 'chrome' : 'firefox') as 'chrome' | 'firefox',
      }));
      for (const d of fleet) {
        const batch = makeBatch(d.id, [report('1.0.0', d.browser, false, 0)]);
        expect((await postBatch(t.server.url, batch, { from: d.from })).status).toBe(202);
      }
      const rollout = await t.operator.createRollout({
        app: 'demo-app',
        channel: 'stable',
        model: MODEL,
        release: '1.1.0',
        shareBps: 5000,
      });
      let seed = 0;
      for (const d of fleet) {
        const canary = (await rolloutBucket(rollout.salt, d.id)) < rollout.shareBps;
        const record = canary
          ? report('1.1.0', d.browser, d.browser === 'firefox', seed++)
          : report('1.0.0', d.browser, false, seed++);
        expect((await postBatch(t.server.url, makeBatch(d.id, [record]), { from: d.from })).status).toBe(202);
      }
      const rows = await t.server.canary!.evidence.evidence(rollout.id);
      // The monitor runs as telemetry arrives: it may halt before the last install has reported.
      expect(rows.length).toBeGreaterThanOrEqual(2 * POLICY.minInstalls);
      expect(rows.every((r) => r.segment?.browser === 'chrome' || r.segment?.browser === 'firefox')).toBe(
        true,
      );
      expect(rows.find((r) => r.segment?.browser === 'firefox')?.segment).toMatchObject({
        browserVersion: 'firefox-133',
        backend: 'wasm',
      });

      const verdict = await t.server.canary!.analyse(rollout);
      expect(verdict!.decision).toBe('halt');
      const regressed = verdict!.evidence.tests!.filter((x) => x.regressed).map((x) => x.scope);
      expect(regressed).toContain('browser=firefox');
      expect(regressed).not.toContain('browser=chrome');
      expect(verdict!.reasons.join()).toMatch(/on browser=firefox/);

      await t.server.canary!.run();
      for (let i = 0; i < 100 && (await t.server.registry.getRollout(rollout.id))!.state !== 'halted'; i++)
        await new Promise((r) => setTimeout(r, 50));
      const halted = (await t.server.registry.getRollout(rollout.id))!;
      expect(halted.state).toBe('halted');
      expect(halted.reason).toMatch(/on browser=firefox/);
      // The split by segment is in the halt's evidence (audit trail, webhook).
      const { entries } = await t.viewer.audit({ app: 'demo-app', model: MODEL, limit: 5 });
      const halt = entries.find((e) => e.action === 'rollout.halt' && e.actor === 'canary-analysis');
      const evidence = (halt!.details as { evidence: { segments: Record<string, Record<string, unknown>> } })
        .evidence;
      expect(Object.keys(evidence.segments.browser!).sort()).toEqual(['chrome', 'firefox']);
    }, 120_000);

    it('under an exclude policy, excludes the one regressed browser instead of halting, and the rest continues', async () => {
      const channel = 'edge';
      await t.operator.promoteRelease('demo-app', channel, MODEL, '1.0.0');
      await governance(t.admin).setPolicy('demo-app', channel, {
        requireApproval: false,
        approverNotPublisher: false,
        segmentRegression: 'exclude',
      });
      const fleet = Array.from({ length: 160 }, (_, i) => ({
        id: newInstall(),
        from: `127.${70 + (i % 20)}.0.${1 + Math.floor(i / 20)}`,
        browser: (i % 2 === 0 ? 'chrome' : 'firefox') as 'chrome' | 'firefox',
      }));
      const post = async (d: (typeof fleet)[number], record: TelemetryRecord) =>
        expect(
          (await postBatch(t.server.url, makeBatch(d.id, [record], { channel }), { from: d.from })).status,
        ).toBe(202);
      for (const d of fleet) await post(d, report('1.0.0', d.browser, false, 0));
      const rollout = await t.operator.createRollout({
        app: 'demo-app',
        channel,
        model: MODEL,
        release: '1.1.0',
        shareBps: 5000,
      });
      let seed = 0;
      const inside = new Map<string, boolean>();
      for (const d of fleet) {
        const canary = (await rolloutBucket(rollout.salt, d.id)) < rollout.shareBps;
        inside.set(d.id, canary);
        await post(
          d,
          report(canary ? '1.1.0' : '1.0.0', d.browser, canary && d.browser === 'firefox', seed++),
        );
      }
      const verdict = await t.server.canary!.analyse(rollout);
      expect(verdict!.decision).toBe('halt');

      await t.server.canary!.run();
      await t.server.canary!.settled();
      const after = (await t.server.registry.getRollout(rollout.id))!;
      // Not halted: still active at its share, with Firefox left out.
      expect(after).toMatchObject({ state: 'active', shareBps: 5000 });
      expect(after.excludedSegments).toEqual([{ dimension: 'browser', value: 'firefox' }]);
      // The signed manifest carries it; a Firefox device in the canary's buckets gets production,
      // a Chrome device there still gets the candidate.
      const { manifest } = await verifyManifest(
        await (await fetch(`${t.server.url}/v1/apps/demo-app/channels/${channel}/manifest`)).text(),
        {
          root: t.server.trustedRoot,
          app: 'demo-app',
          channel,
          now: new Date(),
        },
      );
      const entry = manifest.models.find((m) => m.name === MODEL)!;
      expect(entry.rollout!.excludedSegments).toEqual([{ dimension: 'browser', value: 'firefox' }]);
      const firefox = fleet.find((d) => d.browser === 'firefox' && inside.get(d.id))!;
      const chrome = fleet.find((d) => d.browser === 'chrome' && inside.get(d.id))!;
      const values = (b: 'chrome' | 'firefox') =>
        deviceSegmentValues({ browser: b, browserMajor: b === 'chrome' ? 131 : 133 }, '0.4.0');
      expect((await chooseRelease(entry, firefox.id, values('firefox'))).active!.version).toBe('1.0.0');
      expect((await chooseRelease(entry, chrome.id, values('chrome'))).active!.version).toBe('1.1.0');
      // Judged again without Firefox, the rollout is healthy, and the next pass leaves it running.
      expect((await t.server.canary!.analyse(after))!.decision).not.toBe('halt');
      await t.server.canary!.run();
      expect((await t.server.registry.getRollout(rollout.id))!.state).toBe('active');
      const { entries } = await t.viewer.audit({ app: 'demo-app', model: MODEL, limit: 10 });
      const exclude = entries.find((e) => e.action === 'rollout.exclude' && e.channel === channel);
      expect(exclude).toMatchObject({ actor: 'canary-analysis' });
      expect(entries.some((e) => e.action === 'rollout.halt' && e.channel === channel)).toBe(false);
      const event = hooks.received.find((h) => h.event === 'rollout.segments-excluded');
      expect(event).toMatchObject({
        excluded: [{ dimension: 'browser', value: 'firefox' }],
        rollout: { id: rollout.id },
      });
      await t.operator.halt(rollout.id, 'test done');
    }, 120_000);

    it('gives a shadow candidate a verdict in the fleet API and sends it as a webhook event', async () => {
      const rollout = await t.operator.createRollout({
        app: 'demo-app',
        channel: 'stable',
        model: MODEL,
        release: '1.2.0',
        shareBps: 10_000,
        mode: 'shadow',
      });
      const run = { model: MODEL, production: '1.0.0', candidate: '1.2.0', compared: 100, agreements: 99 };
      for (let i = 0; i < 12; i++) {
        const batch = makeBatch(
          newInstall(),
          shadowRecords({ ...run, absDiffMilli: 5, productionMs: 8, candidateMs: 8.5 }),
        );
        expect((await postBatch(t.server.url, batch, { from: `127.60.${i}.1` })).status).toBe(202);
      }
      const fleet = await t.viewer.fleet({ app: 'demo-app', channel: 'stable', model: MODEL });
      const shadow = fleet.rollouts.find((r) => r.id === rollout.id)?.shadow;
      expect(shadow).toMatchObject({
        decision: 'ready',
        evidence: { against: '1.0.0', devices: 12, compared: 1200 },
      });
      await t.server.canary!.run();
      await t.server.canary!.settled();
      const event = hooks.received.find((h) => h.event === 'rollout.shadow-verdict');
      expect(event).toMatchObject({ decision: 'ready', rollout: { id: rollout.id } });
      await t.operator.halt(rollout.id, 'test done');
    }, 60_000);
  });
}
