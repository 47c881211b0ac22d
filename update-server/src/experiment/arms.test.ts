// An experiment with three treatments over real HTTP, on SQLite and PostgreSQL: one rollout whose
// arms the signed manifest carries; simulated devices verify that manifest and choose their
// release with the protocol's chooseRelease (as the runtime does), report a 0/1 outcome whose
// rate is higher on one arm by a known effect, and that arm is the winner. A harmful arm halts
// every arm.
import {
  chooseRelease,
  type EdgeshipError,
  type ModelEntry,
  mulberry32,
  rolloutArm,
  rolloutBucket,
  seededBytes,
  verifyManifest,
} from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, type TestServer } from '../../../test/support/server.ts';
import { type CanaryTestServer, canaryTestServer } from '../canary/testing.ts';
import { newInstalls, uniformMonitoring } from '../telemetry/testing.ts';
import { MODEL, reportOutcome } from './testing.ts';

const INSTALLS = 256;
const TREATMENTS = ['1.1.0', '1.2.0', '1.3.0'];
// Several arms with no true effect run in every test: at 1% (Bonferroni over arms) a false harm or
// winner among them stays far rarer than at 5%, while the true effects here are clear at 1%.
const ALPHA = 0.01;

for (const dialect of ['sqlite', 'postgres'] as const) {
  // Hundreds of installs report over HTTP, one batch each, twice.
  describe(`a three-arm experiment on ${dialect}`, { timeout: 180_000 }, () => {
    let server: CanaryTestServer;
    let t: TestServer;
    let network = 0;

    beforeAll(async () => {
      // Guardrails judged at this fleet's size (an arm has about 64 installs on 16 networks).
      const policy = { minInferences: 100, minInstalls: 12, minPrefixes: 4 };
      server = await canaryTestServer(dialect, MODEL, { intervalMs: 60_000, policy }, (v) =>
        seededBytes(3000, 40 + Number(v.split('.')[1])),
      );
      t = server.t;
      await publish(t, seededBytes(3000, 49), {
        model: MODEL,
        version: '1.3.0',
        monitoring: uniformMonitoring(),
      });
    });
    afterAll(() => server?.stop());

    async function manifestEntry(): Promise<ModelEntry> {
      const response = await fetch(`${t.server.url}/v1/apps/demo-app/channels/stable/manifest`);
      expect(response.status).toBe(200);
      const { manifest } = await verifyManifest(await response.text(), {
        root: t.server.trustedRoot,
        app: 'demo-app',
        channel: 'stable',
        now: new Date(),
      });
      return manifest.models.find((m) => m.name === MODEL)!;
    }

    /** An experiment on `accepted` (minimum effect 0.1, alpha ALPHA) on the stable channel. */
    const startArms = (fields: Partial<Parameters<TestServer['operator']['startExperiment']>[0]>) =>
      t.operator.startExperiment({
        app: 'demo-app',
        channel: 'stable',
        model: MODEL,
        metric: { kind: 'outcome', name: 'accepted' },
        minimumEffect: 0.1,
        alpha: ALPHA,
        ...fields,
      });

    const report = (
      device: string,
      version: string,
      rate: number,
      random: () => number,
      from: string,
      errors = 0,
    ) => reportOutcome(t.server.url, { device, version, rate, random, from, errors });

    /** Installs seen on production before the experiment (the evidence counts only those), 16 networks. */
    async function seenInstalls(random: () => number) {
      const base = ++network;
      const installs = newInstalls(INSTALLS).map((id, i) => ({ id, from: `127.${base}.${(i % 16) + 1}.1` }));
      const production = (await manifestEntry()).production!;
      for (const d of installs) await report(d.id, production, 0.3, random, d.from);
      return installs;
    }

    it('carries every arm in the signed manifest, gives each device its arm, and names the better arm the winner', async () => {
      const random = mulberry32(180);
      const installs = await seenInstalls(random);
      const started = await startArms({
        treatments: TREATMENTS,
      });
      // An equal split: three arms of 25% and the control sampled from the remaining quarter.
      expect(started.rollout).toMatchObject({
        release: '1.1.0',
        control: '1.0.0',
        shareBps: 7500,
        arms: TREATMENTS.map((release) => ({ release, shareBps: 2500 })),
      });
      expect(started.spec.estimate.installsPerArm).toBeGreaterThan(10);
      expect(started.verdict.decision).toBe('waiting');
      expect(started.verdict.comparisons).toHaveLength(0);

      const entry = await manifestEntry();
      expect(entry.rollout).toMatchObject({ id: started.rollout.id, arms: started.rollout.arms });
      expect(entry.releases.map((r) => r.version).sort()).toEqual(['1.0.0', ...TREATMENTS]);

      // Each device runs what chooseRelease gives it; arm 2 (1.2.0) accepts 0.5, the rest 0.3.
      const perVersion = new Map<string, number>();
      for (const d of installs) {
        const choice = await chooseRelease(entry, d.id);
        const version = choice.active!.version;
        const bucket = await rolloutBucket(entry.rollout!.salt, d.id);
        const arm = rolloutArm(entry.rollout!.arms!, bucket);
        expect(version).toBe(arm < 0 ? '1.0.0' : TREATMENTS[arm]);
        // Disjoint ranges of 2500 buckets each, from 0.
        if (arm >= 0) expect(Math.floor(bucket / 2500)).toBe(arm);
        perVersion.set(version, (perVersion.get(version) ?? 0) + 1);
        await report(d.id, version, version === '1.2.0' ? 0.5 : 0.3, random, d.from);
      }
      // About 64 each (random ids, sd 7): more than 30 fails about once in a million runs; the
      // earlier bound of 50 failed about once in ten.
      for (const version of ['1.0.0', ...TREATMENTS]) expect(perVersion.get(version)).toBeGreaterThan(30);

      const seen = await t.viewer.experiment(started.rollout.id);
      expect(seen.verdict).toMatchObject({ decision: 'winner', winner: '1.2.0' });
      // Each arm's telemetry is attributed to its release: its installs are the devices that ran it.
      const byRelease = new Map(seen.verdict.comparisons.map((c) => [c.release, c]));
      expect([...byRelease.keys()].sort()).toEqual(TREATMENTS);
      for (const version of TREATMENTS) {
        const c = byRelease.get(version)!;
        expect(c.control).toBe('1.0.0');
        expect(c.treatment.installs).toBe(perVersion.get(version));
        expect(c.controlEstimate.installs).toBe(perVersion.get('1.0.0'));
      }
      expect(byRelease.get('1.2.0')!.interval[0]).toBeGreaterThan(0);
      expect(byRelease.get('1.1.0')!.interval[0]).toBeLessThan(0);
      expect(byRelease.get('1.3.0')!.interval[0]).toBeLessThan(0);

      // A share is the arms': widening one rollout share is refused; so are promoting "the" rollout
      // and a schedule of stages (which could never widen it).
      for (const attempt of [
        () => t.operator.setShare(started.rollout.id, 9000),
        () => t.operator.promote(started.rollout.id),
        () =>
          t.operator.scheduleRollout(started.rollout.id, {
            stagesBps: [7500, 10_000],
            minStageMinutes: 0,
            minSamples: 0,
          }),
      ]) {
        const error = (await attempt().catch((e: unknown) => e)) as EdgeshipError;
        expect(error.code).toBe('E_INVALID_STATE');
      }
      // Promoting the winning arm's release ends the experiment as promoted.
      await t.operator.promoteRelease('demo-app', 'stable', MODEL, '1.2.0');
      expect((await t.viewer.experiment(started.rollout.id)).rollout.state).toBe('promoted');
      expect(await manifestEntry()).toMatchObject({ production: '1.2.0', rollout: null });
    });

    it('halts every arm when one arm is worse with confidence, on the monitor pass', async () => {
      const random = mulberry32(181);
      const installs = await seenInstalls(random);
      const started = await startArms({
        treatments: ['1.1.0', '1.3.0'],
        shareBps: 3000,
      });
      expect(started.rollout).toMatchObject({ control: '1.2.0', shareBps: 6000 });
      const entry = await manifestEntry();
      // 1.3.0 accepts 0.1 against production's 0.3: fast and error-free, but worse.
      for (const d of installs) {
        const version = (await chooseRelease(entry, d.id)).active!.version;
        await report(d.id, version, version === '1.3.0' ? 0.1 : 0.3, random, d.from);
      }
      await t.server.canary!.run();
      const seen = await t.viewer.experiment(started.rollout.id);
      expect(seen.rollout.state).toBe('halted');
      expect(seen.verdict).toMatchObject({ decision: 'stopped-for-harm', harmful: ['1.3.0'] });
      expect(seen.rollout.reason).toContain('all 2 arms halted');
      // Every device is back on production.
      const after = await manifestEntry();
      expect(after.rollout).toBeNull();
      for (const d of installs.slice(0, 20))
        expect((await chooseRelease(after, d.id)).active!.version).toBe('1.2.0');
    });

    it('refuses treatments that leave no room for a control, or that repeat a release', async () => {
      for (const input of [
        { treatments: ['1.1.0', '1.3.0'], shareBps: 5000 },
        { treatments: ['1.1.0', '1.1.0'] },
        { treatments: ['1.1.0'], release: '1.3.0' },
        { release: '1.1.0', allocation: 'thompson' as const },
        { treatments: ['1.1.0', '1.3.0'], allocation: 'thompson' as const, shareBps: 1000, floorBps: 1500 },
      ]) {
        const error = (await startArms(input).catch((e: unknown) => e)) as EdgeshipError;
        expect(error.code).toBe('E_VALIDATION');
      }
    });

    it('re-splits a Thompson experiment toward the better arm, signed and audited, and reports posteriors instead of a winner', async () => {
      const random = mulberry32(182);
      await publish(t, seededBytes(3000, 50), {
        model: MODEL,
        version: '1.4.0',
        monitoring: uniformMonitoring(),
      });
      const installs = await seenInstalls(random);
      const started = await startArms({
        treatments: ['1.1.0', '1.3.0', '1.4.0'],
        allocation: 'thompson',
      });
      expect(started.spec.allocation).toEqual({ kind: 'thompson', floorBps: 500 });
      // Before every arm has its installs: the equal split stands.
      await t.server.canary!.run();
      expect((await manifestEntry()).rollout!.arms!.map((a) => a.shareBps)).toEqual([2500, 2500, 2500]);
      const entry = await manifestEntry();
      for (const d of installs) {
        const version = (await chooseRelease(entry, d.id)).active!.version;
        await report(d.id, version, version === '1.4.0' ? 0.6 : 0.3, random, d.from);
      }
      await t.server.canary!.run();
      expect((await t.viewer.experiment(started.rollout.id)).rollout).toMatchObject({
        state: 'active',
        reason: null,
      });
      // 1.4.0 is the best with a posterior probability near 1: it takes all but the others' floors.
      const moved = await manifestEntry();
      expect(moved.rollout!.arms).toEqual([
        { release: '1.1.0', shareBps: 500 },
        { release: '1.3.0', shareBps: 500 },
        { release: '1.4.0', shareBps: 6500 },
      ]);
      expect(moved.rollout!.shareBps).toBe(7500);
      // A device follows the re-signed split on its next check.
      for (const d of installs.slice(0, 60)) {
        const bucket = await rolloutBucket(moved.rollout!.salt, d.id);
        const expected = bucket < 500 ? '1.1.0' : bucket < 1000 ? '1.3.0' : bucket < 7500 ? '1.4.0' : '1.2.0';
        expect((await chooseRelease(moved, d.id)).active!.version).toBe(expected);
      }
      const seen = await t.viewer.experiment(started.rollout.id);
      expect(seen.verdict.decision).toBe('adaptive');
      const probabilities = seen.verdict.decision === 'adaptive' ? seen.verdict.probabilities : [];
      expect(probabilities.find((p) => p.release === '1.4.0')!.pBest).toBeGreaterThan(0.99);
      // The same evidence again: the same posterior, no new change.
      await t.server.canary!.run();
      const { entries } = await t.viewer.audit({ app: 'demo-app', channel: 'stable', limit: 50 });
      const changes = entries.filter((e) => e.action === 'rollout.arms');
      expect(changes).toHaveLength(1);
      expect(changes[0]).toMatchObject({
        actor: 'experiment-analysis',
        details: { allocation: 'thompson', from: started.rollout.arms, to: moved.rollout!.arms },
      });
    });

    it("halts every arm on one arm's guardrail breach, and names that arm", async () => {
      const random = mulberry32(183);
      const installs = await seenInstalls(random);
      const started = await startArms({
        treatments: ['1.1.0', '1.3.0'],
      });
      const entry = await manifestEntry();
      // Equal on the primary metric; 1.3.0 fails a third of its runs.
      for (const d of installs) {
        const version = (await chooseRelease(entry, d.id)).active!.version;
        await report(d.id, version, 0.3, random, d.from, version === '1.3.0' ? 3 : 0);
      }
      await t.server.canary!.run();
      const seen = await t.viewer.experiment(started.rollout.id);
      expect(seen.rollout.state).toBe('halted');
      expect(seen.rollout.reason).toMatch(/^canary analysis: 1\.3\.0: /);
      expect(seen.verdict).toMatchObject({ decision: 'stopped-for-harm', harmful: ['1.3.0'] });
      expect((await manifestEntry()).rollout).toBeNull();
      const { entries } = await t.viewer.audit({ app: 'demo-app', channel: 'stable', limit: 5 });
      const halt = entries.find((e) => e.action === 'rollout.halt')!;
      expect(halt.actor).toBe('canary-analysis');
    });
  });
}
