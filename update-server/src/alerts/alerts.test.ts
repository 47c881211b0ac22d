// Alerts on what a channel serves in production, end to end: a real server on a real SQLite file
// and on PostgreSQL, telemetry over real HTTP, webhooks to a real receiver on loopback, time moved
// on the server's telemetry clock (the clock the monitor's windows and episodes run on).
import { rm } from 'node:fs/promises';
import { seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { type WebhookReceiver, webhookReceiver } from '../../../test/support/webhook-receiver.ts';
import type { ServerOptions } from '../server.ts';
import { createTestSchema, type TestSchema } from '../storage/registry.suite.ts';
import { makeBatch, makeRecord, postBatch, uniformMonitoring } from '../telemetry/testing.ts';

const MODEL = 'vad';
const MINUTE = 60_000;

describe.each(['sqlite', 'postgres'] as const)('production alerts on %s', (dialect) => {
  let schema: TestSchema | undefined;
  let offsetMs = 0;
  let t: TestServer;
  let hooks: WebhookReceiver;
  let options: Partial<ServerOptions>;

  beforeAll(async () => {
    hooks = await webhookReceiver();
    schema = dialect === 'postgres' ? await createTestSchema() : undefined;
    options = {
      databaseUrl: schema?.url,
      webhookUrl: hooks.url,
      telemetryClock: () => new Date(Date.now() + offsetMs),
      // Passes are run by the test; telemetry may add some of its own (episodes make them harmless).
      canary: { intervalMs: 3_600_000, throttleMs: 3_600_000, webhook: { baseDelayMs: 20 } },
    };
    t = await startTestServer(options);
    await publish(t, seededBytes(2000, 18), {
      model: MODEL,
      version: '1.0.0',
      monitoring: uniformMonitoring(),
    });
    await t.operator.promoteRelease('demo-app', 'stable', MODEL, '1.0.0');
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
    await rm(t.dataDir, { recursive: true, force: true });
    await schema?.drop();
    await hooks?.close();
  });

  /** `n` calls of the production release from three installs; drifted ones all land in the top bin. */
  async function report(drifted: boolean, n = 300) {
    for (const device of ['alert-a', 'alert-b', 'alert-c']) {
      const energy = drifted ? [0, 0, 0, 0, 0, 0, 0, 0, 0, n] : Array(10).fill(n / 10);
      const record = makeRecord({
        model: MODEL,
        version: '1.0.0',
        latenciesMs: Array(n).fill(8),
        errors: { E_HEALTH_CHECK: 1 },
        energy,
      });
      expect((await postBatch(t.server.url, makeBatch(device, [record]))).status).toBe(202);
    }
  }

  /** One monitor pass, then the webhooks it sent. */
  async function pass() {
    await t.server.canary!.run();
    await t.server.canary!.settled();
  }

  /** `minutes` later, a report (drifted or not), then two monitor passes (the second must add nothing). */
  async function laterReport(minutes: number, drifted: boolean) {
    offsetMs += minutes * MINUTE;
    await report(drifted);
    await pass();
    await pass();
  }

  it('fires on injected drift once, survives a restart without repeating, suggests retraining once, resolves', async () => {
    const set = await t.operator.setChannelAlerts('demo-app', 'stable', {
      thresholds: { driftPsi: 0.25, errorRate: 0.05, p95LatencyMs: 250, inputErrorShare: 0.05 },
      windowMinutes: 10,
      minSamples: 300,
      retrainAfterMinutes: 30,
    });
    expect(set.config).toMatchObject({ windowMinutes: 10, retrainAfterMinutes: 30 });

    // Healthy production: nothing fires.
    await report(false);
    await pass();
    expect(hooks.received.filter((e) => String(e.event).startsWith('alert.'))).toEqual([]);

    // Drift injected: one alert.fired, with its evidence; further passes add nothing.
    await laterReport(11, true); // the healthy window is out of the trailing window
    const fired = hooks.events('alert.fired');
    expect(fired).toHaveLength(1);
    const alert = fired[0]!.alert as Record<string, unknown>;
    expect(alert).toMatchObject({
      app: 'demo-app',
      channel: 'stable',
      model: MODEL,
      version: '1.0.0',
      rule: 'drift',
    });
    expect(alert.value as number).toBeGreaterThan(0.25);
    const evidence = fired[0]!.evidence as {
      measures: { drift: { feature: string; psi: number } };
      window: object;
    };
    expect(evidence.measures.drift.feature).toBe('energy');
    expect(evidence.window).toMatchObject({ minutes: 10 });

    // A restart (a new process on the same database) does not announce the open episode again.
    await t.stop({ keepData: true });
    t = await startTestServer({ ...options, dataDir: t.dataDir });
    await pass();
    expect(hooks.events('alert.fired')).toHaveLength(1);
    expect(hooks.events('retrain.suggested')).toHaveLength(0);

    // Drift persisting past retrainAfterMinutes: retrain.suggested, once.
    await laterReport(31, true);
    const retrain = hooks.events('retrain.suggested');
    expect(retrain).toHaveLength(1);
    expect(retrain[0]).toMatchObject({ app: 'demo-app', channel: 'stable', model: MODEL, version: '1.0.0' });
    expect((retrain[0]!.alert as { id: string }).id).toBe(alert.id);

    // Drift stops: one alert.resolved for the same episode; nothing more afterwards.
    await laterReport(11, false);
    const resolved = hooks.events('alert.resolved');
    expect(resolved).toHaveLength(1);
    expect(resolved[0]!.alert).toMatchObject({ id: alert.id, rule: 'drift' });
    expect((resolved[0]!.alert as { value: number }).value).toBeLessThanOrEqual(0.25);
    expect(hooks.events('alert.fired')).toHaveLength(1);
    expect(hooks.events('retrain.suggested')).toHaveLength(1);

    // The episodes as the admin API shows them; the configuration change is audited.
    const view = await t.viewer.channelAlerts('demo-app', 'stable');
    expect(view.episodes.find((e) => e.rule === 'drift')).toMatchObject({
      episode: alert.id,
      state: 'resolved',
    });
    const { entries } = await t.viewer.audit({ app: 'demo-app', channel: 'stable' });
    expect(entries.find((e) => e.action === 'channel.alerts')?.details).toMatchObject({ from: null });
  }, 120_000);

  it('fires on a share of E_INPUT over its threshold (another rule, the same episode logic)', async () => {
    offsetMs += 11 * MINUTE;
    const record = makeRecord({
      model: MODEL,
      version: '1.0.0',
      latenciesMs: Array(300).fill(8),
      errors: { E_INPUT: 60 },
      energy: Array(10).fill(30),
    });
    expect((await postBatch(t.server.url, makeBatch('alert-d', [record]))).status).toBe(202);
    await pass();
    const fired = hooks.events('alert.fired').map((e) => (e.alert as { rule: string }).rule);
    expect(fired).toEqual(['drift', 'error-rate', 'input-errors']);
  });

  it('resolves the episodes of rules switched off while they fire', async () => {
    await t.operator.setChannelAlerts('demo-app', 'stable', { thresholds: { driftPsi: 0.25 } });
    await pass();
    const resolved = hooks.events('alert.resolved').slice(1);
    expect(resolved.map((e) => (e.alert as { rule: string }).rule)).toEqual(['error-rate', 'input-errors']);
    expect(resolved[0]!.evidence).toMatchObject({ switchedOff: true });
    const view = await t.viewer.channelAlerts('demo-app', 'stable');
    expect(view.episodes.filter((e) => e.state === 'firing')).toEqual([]);
  });
});
