// A schedule's segment hold (canary/schedule.ts SegmentHold), end to end: a real server on SQLite
// and on PostgreSQL, signed telemetry over real HTTP from distinct loopback /24s, time moved on
// the server's telemetry clock. A quarter of the fleet is Firefox: at the first stage it has too few
// canary installs for a verdict of its own, so the schedule widens only as far as Firefox needs (a
// fill step), and goes on to the next stage once Firefox is judged; a Firefox-only regression is
// halted there, before the next stage; a segment that never fills is waited out, and said so.
import { rolloutBucket, seededBytes, type TelemetryRecord } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../../test/support/server.ts';
import type { RolloutRecord } from '../storage/types.ts';
import { makeBatch, makeRecord, postBatch } from '../telemetry/testing.ts';
import { controlFrom } from './evidence.ts';
import { installsOnNetworks, publishMonitored } from './testing.ts';

const APP = 'demo-app';
const MODEL = 'seg-hold';
const MINUTE = 60_000;
const STAGES = [300, 5000, 10_000];
const POLICY = { minInstalls: 12, minPrefixes: 4, minSegmentInstalls: 12 };
let offsetMs = 0;

type Browser = 'chrome' | 'firefox';
interface Install {
  id: string;
  from: string;
}

/**
 * 100 inferences at 8 ms; 1% errors, or 6% when regressed: a quarter of the canary that fails 6%
 * keeps the pooled canary (2.25%) within the 1% margin, so that only Firefox's own verdict halts.
 */
function report(version: string, browser: Browser, regressed: boolean): TelemetryRecord {
  const errors = regressed ? 6 : 1;
  return {
    ...makeRecord({
      model: MODEL,
      version,
      latenciesMs: Array.from({ length: 100 - errors }, (_, i) => 8 * (0.8 + (0.4 * i) / 100)),
      errors: { E_HEALTH_CHECK: errors },
      energy: Array.from({ length: 10 }, (_, i) => (i < 100 - errors - 90 ? 10 : 9)),
    }),
    segment: { browser, browserMajor: browser === 'chrome' ? 131 : 133, os: 'windows', deviceClass: 'mid' },
  };
}

describe.each(['sqlite', 'postgres'] as const)('schedule segment hold on %s', (dialect) => {
  let t: TestServer;
  let fleet: Install[];
  const production = '1.0.0';

  beforeAll(async () => {
    t = await startTestServer({
      postgres: dialect === 'postgres',
      telemetryClock: () => new Date(Date.now() + offsetMs),
      telemetry: { deviceCap: { batchesPerWindow: 40, inferencesPerWindow: 1_000_000 } },
      canary: {
        intervalMs: 3_600_000,
        throttleMs: 3_600_000,
        policy: POLICY,
        caps: { maxEventsPerInstall: 100_000, maxInstallsPerPrefix: 16 },
      },
    });
    await publishMonitored(t, MODEL, ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0'], (v) =>
      seededBytes(3000, Number(v.at(2)) + 60),
    );
    // 1,000 installs on 100 /24s, each seen before any rollout (only those count for one). The
    // buckets are random (a random salt per rollout): at 3% the canary has 30 ± 5 installs, a
    // quarter of them Firefox, short of the 12 a verdict needs; the control (the top 10%) has
    // 100 ± 9, so its 25 Firefox installs are always enough for one (with 600 installs and a 5%
    // first stage, Firefox's 15 in the control fell short one rollout in twenty, and no hold was due).
    fleet = installsOnNetworks(1000, 100, 41);
    for (const install of fleet)
      expect(
        (
          await postBatch(t.server.url, makeBatch(install.id, [report('1.0.0', 'chrome', false)]), {
            from: install.from,
          })
        ).status,
      ).toBe(202);
  }, 180_000);
  afterAll(async () => {
    await t?.stop();
  });

  /**
   * Which installs are Firefox, for one rollout: every fourth in bucket order, so that a quarter of
   * every share of the fleet is Firefox (at the first stage about 7 of the canary's 30 installs,
   * fewer than the 12 a segment verdict needs; at twice that share enough).
   */
  async function browsersFor(rollout: RolloutRecord): Promise<Map<string, Browser>> {
    const buckets = await Promise.all(
      fleet.map(async (d) => [d.id, await rolloutBucket(rollout.salt, d.id)] as const),
    );
    buckets.sort((a, b) => a[1] - b[1]);
    return new Map(buckets.map(([id], i) => [id, i % 4 === 1 ? 'firefox' : 'chrome']));
  }

  /** Every install in the canary or the control reports once what its bucket runs now. */
  async function round(rollout: RolloutRecord, browsers: Map<string, Browser>, regressedOn: Browser | null) {
    const { shareBps } = (await t.server.registry.getRollout(rollout.id))!;
    for (const d of fleet) {
      const bucket = await rolloutBucket(rollout.salt, d.id);
      const browser = browsers.get(d.id)!;
      const record =
        bucket < shareBps
          ? report(rollout.release, browser, browser === regressedOn)
          : bucket >= controlFrom(shareBps)
            ? report(production, browser, false)
            : null;
      if (record)
        expect((await postBatch(t.server.url, makeBatch(d.id, [record]), { from: d.from })).status).toBe(202);
    }
  }

  const pass = async () => {
    await t.server.canary!.run();
    await t.server.canary!.settled();
  };
  const rolloutOf = async (r: RolloutRecord) => (await t.server.registry.getRollout(r.id))!;
  const scheduled = async (release: string, segmentMaxWaitMinutes: number, stages = STAGES) => {
    const rollout = await t.operator.createRollout({
      app: APP,
      channel: 'stable',
      model: MODEL,
      release,
      shareBps: stages[0]!,
    });
    await t.operator.scheduleRollout(rollout.id, {
      stagesBps: stages,
      minStageMinutes: 0,
      minSamples: 0,
      segmentMaxWaitMinutes,
    });
    return { rollout, browsers: await browsersFor(rollout) };
  };
  const scheduleSteps = async (rolloutId: string) =>
    (await t.viewer.audit({ app: APP, channel: 'stable', model: MODEL, limit: 50 })).entries
      .filter(
        (e) =>
          e.actor === 'rollout-schedule' && (e.details as { rolloutId?: string }).rolloutId === rolloutId,
      )
      .reverse();

  it('holds the first stage until Firefox has a verdict (widening only as far as it needs), then widens', async () => {
    const { rollout, browsers } = await scheduled('1.1.0', 60);
    expect(await t.operator.rolloutSchedule(rollout.id)).toMatchObject({
      segmentHold: { minShare: 0.05, maxWaitMs: 60 * MINUTE },
      fillBps: null,
    });
    await round(rollout, browsers, null);
    await pass();
    const first = await t.server.canary!.lastVerdict(rollout.id);
    expect(first?.verdict.decision).toBe('healthy');
    // Firefox: a quarter of the installs, too few on the canary to be judged on its own.
    const firefox = first!.verdict.evidence.segmentInstalls!.browser!.firefox!;
    expect(firefox.canary).toBeLessThan(POLICY.minSegmentInstalls);
    expect(first!.verdict.evidence.segments!.browser!.firefox).toBeUndefined();

    // A fill step: above the first stage, well below the next, and the schedule says why.
    const fill = (await rolloutOf(rollout)).shareBps;
    expect(fill).toBeGreaterThan(STAGES[0]!);
    expect(fill).toBeLessThan(2500);
    const atFill = await t.operator.rolloutSchedule(rollout.id);
    expect(atFill).toMatchObject({ state: 'running', stage: 0, fillBps: fill });
    expect(atFill.note).toMatch(
      /^widened to .*% \(not 50%\) until browser=firefox \(2\d\.\d% of installs, \d+ on the canary\) has the 12 canary installs/,
    );
    const [fillStep] = await scheduleSteps(rollout.id);
    expect(fillStep).toMatchObject({
      action: 'rollout.share',
      details: {
        from: STAGES[0],
        to: fill,
        schedule: { fill: true, stage: 1, pending: [{ scope: 'browser=firefox' }] },
      },
    });
    const [pending] = (fillStep!.details as { schedule: { pending: Array<{ share: number }> } }).schedule
      .pending;
    expect(pending!.share).toBeGreaterThan(0.2);
    expect(pending!.share).toBeLessThan(0.3);

    // Its new installs have not reported yet: it holds at the fill step, and says so.
    await pass();
    expect((await rolloutOf(rollout)).shareBps).toBe(fill);
    expect((await t.operator.rolloutSchedule(rollout.id)).note).toMatch(
      /^holding at .*% until browser=firefox/,
    );

    // They report: Firefox is judged (healthy), and the schedule goes on to its next stage.
    await round(rollout, browsers, null);
    await pass();
    const judged = await t.server.canary!.lastVerdict(rollout.id);
    expect(judged!.verdict.evidence.segments!.browser!.firefox!.canary).toBeGreaterThanOrEqual(
      POLICY.minSegmentInstalls,
    );
    expect(judged!.verdict.evidence.tests!.some((x) => x.scope === 'browser=firefox')).toBe(true);
    expect((await rolloutOf(rollout)).shareBps).toBe(STAGES[1]);
    expect(await t.operator.rolloutSchedule(rollout.id)).toMatchObject({
      state: 'running',
      stage: 1,
      fillBps: null,
      heldSince: null,
      note: null,
    });
    const steps = await scheduleSteps(rollout.id);
    expect(steps.map((e) => e.details)).toMatchObject([
      { to: fill },
      { from: fill, to: STAGES[1], schedule: { stage: 2 } },
    ]);
    expect((steps[1]!.details as { schedule: Record<string, unknown> }).schedule.unjudged).toBeUndefined();
    await t.operator.halt(rollout.id, 'test: next rollout');
  }, 240_000);

  it('halts a Firefox-only regression at the fill step of the first stage, before the next stage', async () => {
    const { rollout, browsers } = await scheduled('1.2.0', 60);
    await round(rollout, browsers, 'firefox');
    await pass();
    // Pooled, the canary is within the margin; Firefox cannot be judged yet: a fill step, not 50%.
    const fill = (await rolloutOf(rollout)).shareBps;
    expect(fill).toBeGreaterThan(STAGES[0]!);
    expect(fill).toBeLessThan(2500);
    await round(rollout, browsers, 'firefox');
    await pass();
    const halted = await rolloutOf(rollout);
    expect(halted.state).toBe('halted');
    expect(halted.reason).toMatch(/on browser=firefox/);
    expect(await t.operator.rolloutSchedule(rollout.id)).toMatchObject({ state: 'halted', stage: 0 });
    const steps = await scheduleSteps(rollout.id);
    expect(steps.map((e) => (e.details as { to: number }).to)).toEqual([fill]);
  }, 240_000);

  it('widens without a segment that never fills once it has waited, and says so', async () => {
    const { rollout, browsers } = await scheduled('1.3.0', 30);
    await round(rollout, browsers, null);
    await pass();
    const fill = (await rolloutOf(rollout)).shareBps;
    expect(fill).toBeGreaterThan(STAGES[0]!);
    // The Firefox installs of the fill step never report (only Chrome does): it holds...
    const chromeOnly = new Map([...browsers].filter(([, b]) => b === 'chrome'));
    const quiet = fleet;
    fleet = quiet.filter((d) => chromeOnly.has(d.id));
    try {
      await round(rollout, browsers, null);
    } finally {
      fleet = quiet;
    }
    await pass();
    expect((await rolloutOf(rollout)).shareBps).toBe(fill);
    expect((await t.operator.rolloutSchedule(rollout.id)).note).toMatch(
      /^holding at .* until browser=firefox .* \(widens without them in 30 min\)$/,
    );
    // ...until the wait is over: then it widens to the next stage, in its note and the audit trail.
    offsetMs += 31 * MINUTE;
    await pass();
    expect((await rolloutOf(rollout)).shareBps).toBe(STAGES[1]);
    const after = await t.operator.rolloutSchedule(rollout.id);
    expect(after).toMatchObject({ state: 'running', stage: 1, fillBps: null });
    expect(after.note).toMatch(/^widened without a verdict on browser=firefox after holding 3\d min$/);
    const steps = await scheduleSteps(rollout.id);
    expect(steps[1]!.details).toMatchObject({
      from: fill,
      to: STAGES[1],
      schedule: { unjudged: [{ scope: 'browser=firefox' }] },
    });
    await t.operator.halt(rollout.id, 'test: done');
  }, 240_000);

  it('fills a first stage too small for any verdict to where the canary has one, then widens on it', async () => {
    // 0.5% of 1,000 installs: about 5 canary installs, short of the 12 a verdict needs, for good
    // (their buckets are fixed). Before, the schedule waited for a healthy verdict there forever.
    const stages = [50, 5000, 10_000];
    const { rollout, browsers } = await scheduled('1.4.0', 60, stages);
    const chrome = new Map([...browsers].map(([id]) => [id, 'chrome' as Browser]));
    await round(rollout, chrome, null);
    await pass();
    const first = await t.server.canary!.lastVerdict(rollout.id);
    expect(first?.verdict.decision).toBe('insufficient-data');
    const installs = first!.verdict.evidence.sources!.canary.installs;
    expect(installs).toBeLessThan(POLICY.minInstalls);
    const fill = (await rolloutOf(rollout)).shareBps;
    expect(fill).toBeGreaterThan(stages[0]!);
    expect(fill).toBeLessThan(stages[1]!);
    expect(await t.operator.rolloutSchedule(rollout.id)).toMatchObject({ stage: 0, fillBps: fill });
    expect((await t.operator.rolloutSchedule(rollout.id)).note).toMatch(
      /^widened to .*% \(not 50%\) until the canary has the installs a verdict needs \(the canary has \d+ installs on \d+ networks, a verdict needs 12 on 4\)$/,
    );
    const [step] = await scheduleSteps(rollout.id);
    expect(step!.details).toMatchObject({
      from: stages[0],
      to: fill,
      schedule: { fill: true, canaryShort: { installs }, verdict: { decision: 'insufficient-data' } },
    });
    // At the fill step the canary should have its verdict. Its installs are fixed by their random
    // buckets, so one fill can still fall short (about 14 expected for the 12 needed): then it
    // fills again, still below the next stage, until the canary is judged (healthy); then the
    // schedule goes on to its next stage.
    let judged = await t.server.canary!.lastVerdict(rollout.id);
    let share = fill;
    for (let look = 0; look < 4; look++) {
      await round(rollout, chrome, null);
      await pass();
      judged = await t.server.canary!.lastVerdict(rollout.id);
      if (judged?.verdict.decision === 'healthy') break;
      expect(judged?.verdict.decision).toBe('insufficient-data');
      const now = (await rolloutOf(rollout)).shareBps;
      expect(now).toBeGreaterThanOrEqual(share);
      expect(now).toBeLessThan(stages[1]!);
      share = now;
    }
    expect(judged?.verdict.decision).toBe('healthy');
    expect(judged!.verdict.evidence.sources!.canary.installs).toBeGreaterThanOrEqual(POLICY.minInstalls);
    expect((await rolloutOf(rollout)).shareBps).toBe(stages[1]);
    expect(await t.operator.rolloutSchedule(rollout.id)).toMatchObject({
      stage: 1,
      fillBps: null,
      note: null,
    });
    await t.operator.halt(rollout.id, 'test: done');
  }, 240_000);
});
