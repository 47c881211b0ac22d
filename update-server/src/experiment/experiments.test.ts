// An experiment over real HTTP on SQLite with simulated devices: installs seen before it starts,
// bucketed by the rollout's salt as devices bucket themselves, report a 0/1 outcome whose rate is
// higher on the treatment by a known effect; the server's estimate comes back at start, and the
// verdict reaches "winner" for the treatment.
import { mulberry32, seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { rolloutBucketSync } from '../canary/bucket.ts';
import { makeBatch, makeRecord, newInstalls, postBatch, uniformMonitoring } from '../telemetry/testing.ts';
import { MODEL, reportOutcome } from './testing.ts';

const INSTALLS = 240;

describe('experiments over HTTP with simulated devices', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({});
    for (const [i, version] of ['1.0.0', '1.1.0'].entries()) {
      await publish(t, seededBytes(3000, 40 + i), { model: MODEL, version, monitoring: uniformMonitoring() });
    }
    await t.operator.promoteRelease('demo-app', 'stable', MODEL, '1.0.0');
  });
  afterAll(() => t?.stop());

  const report = (device: string, version: string, rate: number, random: () => number, from: string) =>
    reportOutcome(t.server.url, { device, version, rate, random, from });

  it('estimates before start, then declares the better treatment the winner', async () => {
    const random = mulberry32(18);
    const installs = newInstalls(INSTALLS);
    // Sixteen networks (the evidence caps installs per /24), all seen before the experiment.
    const from = (i: number) => `127.0.${(i % 16) + 1}.1`;
    for (const [i, device] of installs.entries()) await report(device, '1.0.0', 0.3, random, from(i));

    const started = await t.operator.startExperiment({
      app: 'demo-app',
      channel: 'stable',
      model: MODEL,
      release: '1.1.0',
      shareBps: 5000,
      metric: { kind: 'outcome', name: 'accepted' },
      minimumEffect: 0.1,
      alpha: 0.05,
    });
    expect(started.rollout).toMatchObject({
      release: '1.1.0',
      control: '1.0.0',
      shareBps: 5000,
      state: 'active',
    });
    expect(started.spec.estimate.installsPerDay).toBe(INSTALLS);
    expect(started.spec.estimate.sdPerInstall).toBeGreaterThan(0);
    expect(started.spec.estimate.installsPerArm).toBeGreaterThan(10);
    expect(started.spec.estimate.days).toBeGreaterThan(0);
    expect(started.verdict.decision).toBe('waiting');

    // Each install runs what its bucket gets; the treatment's rate is 0.3 + 0.2.
    const salt = started.rollout.salt;
    for (const [i, device] of installs.entries()) {
      const treated = rolloutBucketSync(salt, device) < 5000;
      await report(device, treated ? '1.1.0' : '1.0.0', treated ? 0.5 : 0.3, random, from(i));
    }
    // One forged install on the treatment claims a million failed outcomes (unweighed, that would
    // read as harm): it weighs as two installs.
    const forger = installs.find((d) => rolloutBucketSync(salt, d) < 5000)!;
    const flood = {
      ...makeRecord({ model: MODEL, version: '1.1.0', latenciesMs: [5] }),
      quality: { outcomes: [{ name: 'accepted', count: 1_000_000, sum: 0, sumSq: 0 }] },
    };
    expect((await postBatch(t.server.url, makeBatch(forger, [flood]), { from: '127.0.1.1' })).status).toBe(
      202,
    );
    const seen = await t.viewer.experiment(started.rollout.id);
    expect(seen.verdict).toMatchObject({ decision: 'winner', winner: '1.1.0' });
    const c = seen.verdict.comparisons[0]!;
    expect(c.interval[0]).toBeGreaterThan(0);
    expect(c.interval[0]).toBeLessThan(0.2);
    expect(c.interval[1]).toBeGreaterThan(0.2);
    expect(c.treatment.installs + c.controlEstimate.installs).toBeGreaterThan(0.9 * INSTALLS);
    expect(seen.guardrails).not.toBeNull();
    expect((await t.viewer.experiments({ model: MODEL })).map((e) => e.rollout.id)).toEqual([
      started.rollout.id,
    ]);
    await t.operator.promote(started.rollout.id);
  });

  it('halts a treatment whose primary metric is worse with confidence, on the monitor pass', async () => {
    const random = mulberry32(19);
    const installs = newInstalls(INSTALLS);
    const from = (i: number) => `127.1.${(i % 16) + 1}.1`;
    for (const [i, device] of installs.entries()) await report(device, '1.1.0', 0.5, random, from(i));
    await publish(t, seededBytes(3000, 42), {
      model: MODEL,
      version: '1.2.0',
      monitoring: uniformMonitoring(),
    });
    const started = await t.operator.startExperiment({
      app: 'demo-app',
      channel: 'stable',
      model: MODEL,
      release: '1.2.0',
      shareBps: 5000,
      metric: { kind: 'outcome', name: 'accepted' },
      minimumEffect: 0.1,
    });
    expect(started.rollout.control).toBe('1.1.0');
    // The treatment accepts 0.2 against production's 0.5: fast and error-free, but worse.
    const salt = started.rollout.salt;
    for (const [i, device] of installs.entries()) {
      const treated = rolloutBucketSync(salt, device) < 5000;
      await report(device, treated ? '1.2.0' : '1.1.0', treated ? 0.2 : 0.5, random, from(i));
    }
    await t.server.canary!.run();
    const seen = await t.viewer.experiment(started.rollout.id);
    expect(seen.rollout.state).toBe('halted');
    expect(seen.verdict).toMatchObject({ decision: 'stopped-for-harm', harmful: ['1.2.0'] });
    const { entries } = await t.viewer.audit({ app: 'demo-app', channel: 'stable', limit: 20 });
    expect(entries.find((e) => e.action === 'rollout.halt')).toMatchObject({ actor: 'experiment-analysis' });
  });
});
