// Segments and shadow verdicts end to end: a real server (SQLite and PostgreSQL) fed signed
// telemetry over real HTTP from many loopback /24s; the canary halts on one regressed browser and
// names it, the fleet API shows the split, and a shadow candidate gets a verdict and a webhook.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Histogram,
  recordValue,
  rolloutBucket,
  seededBytes,
  type TelemetryRecord,
} from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { createTestSchema, type TestSchema } from '../storage/registry.suite.ts';
import { makeBatch, makeRecord, newInstall, postBatch, uniformMonitoring } from '../telemetry/testing.ts';

const MODEL = 'seg';
const POLICY = { minInstalls: 12, minPrefixes: 4, minSegmentInstalls: 12 };
const CAPS = { maxEventsPerInstall: 10_000, maxInstallsPerPrefix: 8 };

async function receiver() {
  const received: Array<Record<string, unknown>> = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** 100 inferences: 8 ms and 1% errors, or 16 ms and 8% errors when regressed. */
function report(
  version: string,
  browser: 'chrome' | 'firefox',
  regressed: boolean,
  seed: number,
): TelemetryRecord {
  const errors = regressed ? 8 : 1;
  const ms = (regressed ? 16 : 8) * (1 + (seed % 7) / 20);
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
    let schema: TestSchema | undefined;
    let hooks: Awaited<ReturnType<typeof receiver>>;

    beforeAll(async () => {
      hooks = await receiver();
      schema = dialect === 'postgres' ? await createTestSchema() : undefined;
      t = await startTestServer({
        databaseUrl: schema?.url,
        webhookUrl: hooks.url,
        telemetry: { deviceCap: { batchesPerWindow: 20, inferencesPerWindow: 1_000_000 } },
        canary: {
          // The monitor judges only when a test says so (run()), on all the evidence: judged as
          // telemetry arrived, a halt on the first few installs would name a different split.
          throttleMs: 3_600_000,
          intervalMs: 60_000,
          webhook: { baseDelayMs: 50 },
          policy: POLICY,
          caps: CAPS,
          shadow: { minDevices: 10, minCompared: 500 },
        },
      });
      for (const version of ['1.0.0', '1.1.0', '1.2.0']) {
        await publish(t, seededBytes(4000, Number(version.at(2)) + 20), {
          model: MODEL,
          version,
          monitoring: uniformMonitoring(),
        });
      }
      await t.operator.promoteRelease('demo-app', 'stable', MODEL, '1.0.0');
    }, 60_000);
    afterAll(async () => {
      await t?.stop();
      await schema?.drop();
      await hooks?.close();
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

    it('gives a shadow candidate a verdict in the fleet API and sends it as a webhook event', async () => {
      const rollout = await t.operator.createRollout({
        app: 'demo-app',
        channel: 'stable',
        model: MODEL,
        release: '1.2.0',
        shareBps: 10_000,
        mode: 'shadow',
      });
      const absDiff: Histogram = {};
      for (let i = 0; i < 100; i++) recordValue(absDiff, 5);
      for (let i = 0; i < 12; i++) {
        const batch = makeBatch(newInstall(), [
          makeRecord({ model: MODEL, version: '1.0.0', latenciesMs: Array(100).fill(8) }),
          makeRecord({
            model: MODEL,
            version: '1.2.0',
            role: 'shadow',
            latenciesMs: Array(100).fill(8.5),
            shadow: { against: '1.0.0', compared: 100, agreements: 99, absDiff },
          }),
        ]);
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
