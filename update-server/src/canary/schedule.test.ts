// Rollouts that advance themselves: a real server on SQLite and on PostgreSQL, installs reporting over real HTTP
// from distinct loopback /24s (as canary/steering.test.ts), time moved on the server's telemetry
// clock, which the schedule measures stages on.
import { rolloutBucket, seededBytes } from '@edgeship/protocol';
import { governance } from '@edgeship/update-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../../test/support/server.ts';
import { type WebhookReceiver, webhookReceiver } from '../../../test/support/webhook-receiver.ts';
import { createTestSchema, type TestSchema } from '../storage/registry.suite.ts';
import type { RolloutRecord } from '../storage/types.ts';
import { makeBatch, makeRecord, postBatch } from '../telemetry/testing.ts';
import { controlFrom } from './evidence.ts';
import { installsOnNetworks, publishMonitored } from './testing.ts';

const APP = 'demo-app';
const MODEL = 'kws';
const MINUTE = 60_000;
const STAGES = [2500, 5000, 10_000];
let offsetMs = 0;
let t: TestServer;
let hooks: WebhookReceiver;

interface Install {
  id: string;
  from: string;
}
let fleet: Install[];

/** What an install ran: healthy (8 ms, 1% errors) or regressed (30 ms, 30% errors). */
function report(version: string, regressed = false, n = 100) {
  const errors = regressed ? 30 : 1;
  return makeRecord({
    model: MODEL,
    version,
    latenciesMs: Array.from({ length: n - errors }, (_, i) => (regressed ? 30 : 8) * (0.8 + (i % 5) / 10)),
    errors: { E_HEALTH_CHECK: errors },
    energy: Array.from(
      { length: 10 },
      (_, i) => Math.floor((n - errors) / 10) + (i < (n - errors) % 10 ? 1 : 0),
    ),
  });
}

const post = async (install: Install, version: string, regressed = false) =>
  expect(
    (
      await postBatch(t.server.url, makeBatch(install.id, [report(version, regressed)]), {
        from: install.from,
      })
    ).status,
  ).toBe(202);

/** Each install reports what its bucket runs at the rollout's current share. */
async function honest(rollout: RolloutRecord, control: string, regressed: boolean) {
  const { shareBps } = (await t.server.registry.getRollout(rollout.id))!;
  for (const install of fleet) {
    const bucket = await rolloutBucket(rollout.salt, install.id);
    if (bucket < shareBps) await post(install, rollout.release, regressed);
    else if (bucket >= controlFrom(shareBps)) await post(install, control);
  }
}

const pass = async () => {
  await t.server.canary!.run();
  await t.server.canary!.settled();
};
const rolloutOf = async (r: RolloutRecord) => (await t.server.registry.getRollout(r.id))!;
const start = (release: string) =>
  t.operator.createRollout({ app: APP, channel: 'stable', model: MODEL, release, shareBps: STAGES[0]! });

describe.each(['sqlite', 'postgres'] as const)('scheduled rollouts on %s', (dialect) => {
  let schema: TestSchema | undefined;
  beforeAll(async () => {
    hooks = await webhookReceiver();
    schema = dialect === 'postgres' ? await createTestSchema() : undefined;
    t = await startTestServer({
      databaseUrl: schema?.url,
      webhookUrl: hooks.url,
      telemetryClock: () => new Date(Date.now() + offsetMs),
      telemetry: { deviceCap: { batchesPerWindow: 20, inferencesPerWindow: 1_000_000 } },
      canary: {
        intervalMs: 3_600_000,
        throttleMs: 3_600_000,
        webhook: { baseDelayMs: 20 },
        policy: { minInstalls: 12, minPrefixes: 4 },
        caps: { maxEventsPerInstall: 10_000, maxInstallsPerPrefix: 6 },
      },
    });
    await publishMonitored(t, MODEL, ['1.0.0', '1.1.0', '1.2.0'], (v) =>
      seededBytes(3000, Number(v.at(2)) + 40),
    );
    // 80 installs on 16 /24s, each seen before any rollout (only those count for one).
    fleet = installsOnNetworks(80, 16, 40);
    for (const install of fleet) await post(install, '1.0.0');
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
    await schema?.drop();
    await hooks?.close();
  });

  it('walks its stages on a healthy release, held by stage time, samples and the channel policy', async () => {
    const rollout = await start('1.1.0');
    const scheduled = await t.operator.scheduleRollout(rollout.id, {
      stagesBps: STAGES,
      minStageMinutes: 10,
      minSamples: 500,
    });
    expect(scheduled).toMatchObject({ stage: 0, state: 'running', stages: STAGES });

    // Stage 1 healthy, with samples, but too young: it stays.
    await honest(rollout, '1.0.0', false);
    await pass();
    const first = (await t.server.canary!.lastVerdict(rollout.id))?.verdict;
    // A failure here says why (a thin canary, its installs), not only that it was not healthy.
    expect(
      first?.decision,
      JSON.stringify({ reasons: first?.reasons, canary: first?.evidence.sources?.canary }),
    ).toBe('healthy');
    expect((await rolloutOf(rollout)).shareBps).toBe(2500);
    expect(await t.operator.rolloutSchedule(rollout.id)).toMatchObject({ state: 'running', stage: 0 });
    // The channel now requires an approval: widening is refused until one is recorded.
    await governance(t.admin).setPolicy(APP, 'stable', {
      requireApproval: true,
      approverNotPublisher: false,
    });

    // Old enough, healthy, enough samples: the policy refuses the step, once in the audit trail.
    offsetMs += 11 * MINUTE;
    await pass();
    await pass();
    expect((await rolloutOf(rollout)).shareBps).toBe(2500);
    expect(await t.operator.rolloutSchedule(rollout.id)).toMatchObject({ state: 'blocked', stage: 0 });
    const refusals = (await t.viewer.audit({ app: APP, channel: 'stable', model: MODEL })).entries.filter(
      (e) => e.action === 'policy.refused',
    );
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({
      actor: 'rollout-schedule',
      details: { attempted: 'rollout.share', rolloutId: rollout.id, from: 2500, to: 5000 },
    });

    // Approved: the next pass widens to stage 2, audited with the verdict it rested on.
    await governance(t.operator).approve(APP, 'stable', MODEL, '1.1.0');
    await pass();
    expect((await rolloutOf(rollout)).shareBps).toBe(5000);
    expect(await t.operator.rolloutSchedule(rollout.id)).toMatchObject({ state: 'running', stage: 1 });

    // Stage 2: old enough but without new samples it stays; with them it promotes (the 100% stage).
    offsetMs += 11 * MINUTE;
    await pass();
    expect((await rolloutOf(rollout)).shareBps).toBe(5000);
    await honest(rollout, '1.0.0', false);
    await pass();
    expect((await rolloutOf(rollout)).state).toBe('promoted');
    expect((await t.viewer.channel(APP, 'stable')).models[0]?.production).toBe('1.1.0');
    expect(await t.operator.rolloutSchedule(rollout.id)).toMatchObject({ state: 'completed', stage: 2 });

    const steps = (await t.viewer.audit({ app: APP, channel: 'stable', model: MODEL })).entries
      .filter((e) => e.actor === 'rollout-schedule')
      .reverse();
    expect(steps.map((e) => e.action)).toEqual(['policy.refused', 'rollout.share', 'rollout.promote']);
    for (const step of steps.slice(1)) {
      const schedule = (step.details as { schedule: Record<string, unknown> }).schedule;
      expect(schedule).toMatchObject({ verdict: { decision: 'healthy' } });
      expect(schedule.stageSamples as number).toBeGreaterThanOrEqual(500);
      expect(schedule.stageMinutes as number).toBeGreaterThanOrEqual(10);
    }
    expect(steps[1]!.details).toMatchObject({ from: 2500, to: 5000, schedule: { stage: 2, of: 3 } });
    expect(steps[2]!.details).toMatchObject({ release: '1.1.0', schedule: { stage: 3, toBps: 10_000 } });
  }, 180_000);

  it('halts on a regressed release instead of widening', async () => {
    const rollout = await start('1.2.0'); // control: 1.1.0, production now
    await governance(t.operator).approve(APP, 'stable', MODEL, '1.2.0');
    await t.operator.scheduleRollout(rollout.id, { stagesBps: STAGES, minStageMinutes: 0, minSamples: 0 });
    await honest(rollout, '1.1.0', true);
    await pass();
    const halted = await rolloutOf(rollout);
    expect(halted).toMatchObject({ state: 'halted', shareBps: 0 });
    expect(await t.operator.rolloutSchedule(rollout.id)).toMatchObject({ state: 'halted', stage: 0 });
    const { entries } = await t.viewer.audit({ app: APP, channel: 'stable', model: MODEL, limit: 10 });
    expect(entries.find((e) => e.action === 'rollout.halt')).toMatchObject({
      actor: 'canary-analysis',
      details: { rolloutId: rollout.id },
    });
    expect(
      entries.filter(
        (e) =>
          e.actor === 'rollout-schedule' && (e.details as { rolloutId?: string }).rolloutId === rollout.id,
      ),
    ).toEqual([]);
    expect(hooks.events('rollout.halted').map((e) => (e.rollout as { id: string }).id)).toContain(rollout.id);
  }, 120_000);
});
