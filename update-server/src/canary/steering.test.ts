// Telemetry that cannot steer a rollout: the canary analysis against a real server (SQLite and
// PostgreSQL) fed over real HTTP from many loopback source addresses, so that the server sees
// installs on distinct /24 networks (127.a.b.0/24) exactly as it would see them on the internet.
import { ManifestEnvelopeSchema, rolloutBucket, seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../../../test/support/server.ts';
import type { WebhookReceiver } from '../../../test/support/webhook-receiver.ts';
import { openStorage } from '../storage/open.ts';
import type { RolloutRecord } from '../storage/types.ts';
import { pruneTelemetry } from '../telemetry/prune.ts';
import { latencies, makeBatch, makeRecord, newInstall, postBatch } from '../telemetry/testing.ts';
import { CanaryEvidenceStore, controlFrom, type InstallEvidence } from './evidence.ts';
import { type CanaryTestServer, canaryTestServer } from './testing.ts';

const MODEL = 'kws';
const POLICY = { minInstalls: 12, minPrefixes: 4 };
const CAPS = { maxEventsPerInstall: 10_000, maxInstallsPerPrefix: 6 };

type Webhooks = WebhookReceiver<{ rollout?: { id?: string }; reason?: string }>;

const uniformEnergy = (n: number) =>
  Array.from({ length: 10 }, (_, i) => Math.floor(n / 10) + (i < n % 10 ? 1 : 0));

interface Install {
  id: string;
  /** Source address: installs with the same 127.a.b share a /24. */
  from: string;
}

/** What an install ran: healthy (8 ms median, 1% errors) or regressed (16 ms, 8% errors). */
function report(version: string, seed: number, regressed = false, n = 100) {
  const errors = regressed ? Math.round(n * 0.08) : 1;
  return makeRecord({
    model: MODEL,
    version,
    latenciesMs: latencies(n - errors, regressed ? 16 : 8, seed),
    errors: { E_HEALTH_CHECK: errors },
    energy: uniformEnergy(n - errors),
  });
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`canary steering on ${dialect}`, () => {
    let t: TestServer;
    let hooks: Webhooks;
    let network = 0;

    let server: CanaryTestServer<Webhooks['received'][number]> | undefined;

    beforeAll(async () => {
      server = await canaryTestServer(
        dialect,
        MODEL,
        { throttleMs: 20, intervalMs: 60_000, webhook: { baseDelayMs: 50 }, policy: POLICY, caps: CAPS },
        (version) => seededBytes(5000, version.length + Number(version.at(2))),
      );
      ({ t, hooks } = server);
    }, 60_000);
    afterAll(async () => {
      await server?.stop();
    });

    const post = async (install: Install, records: ReturnType<typeof report>[]) =>
      (await postBatch(t.server.url, makeBatch(install.id, records), { from: install.from })).status;

    /**
     * `n` installs on `networks` fresh /24s, each seen once (a control batch) before any rollout
     * that follows: only installs the server knew before a rollout started count for it.
     */
    async function installs(n: number, networks: number): Promise<Install[]> {
      const first = network;
      network += networks;
      const list = Array.from({ length: n }, (_, i) => {
        const net = first + (i % networks);
        return {
          id: newInstall(),
          from: `127.${10 + (net >> 8)}.${net & 255}.${1 + Math.floor(i / networks)}`,
        };
      });
      for (const install of list) expect(await post(install, [report('1.0.0', 1, false, 10)])).toBe(202);
      return list;
    }

    const start = (release: string, shareBps: number) =>
      t.operator.createRollout({ app: 'demo-app', channel: 'stable', model: MODEL, release, shareBps });

    /** Installs whose bucket puts them on the candidate, and installs the control arm samples. */
    async function split(rollout: RolloutRecord, list: Install[]) {
      const buckets = await Promise.all(list.map((i) => rolloutBucket(rollout.salt, i.id)));
      return {
        canary: list.filter((_, k) => buckets[k]! < rollout.shareBps),
        control: list.filter((_, k) => buckets[k]! >= controlFrom(rollout.shareBps)),
      };
    }

    /** Honest installs report what their bucket runs. */
    async function honest(rollout: RolloutRecord, list: Install[], regressed: boolean) {
      const arms = await split(rollout, list);
      let seed = 100;
      for (const i of arms.control) expect(await post(i, [report('1.0.0', seed++)])).toBe(202);
      for (const i of arms.canary)
        expect(await post(i, [report(rollout.release, seed++, regressed)])).toBe(202);
      return arms;
    }

    const verdict = async (rollout: RolloutRecord) => {
      await t.server.canary!.run();
      return (await t.server.canary!.lastVerdict(rollout.id))!.verdict;
    };
    const state = async (rollout: RolloutRecord) => (await t.server.registry.getRollout(rollout.id))!.state;
    const halted = async (rollout: RolloutRecord) => {
      for (let i = 0; i < 100 && (await state(rollout)) !== 'halted'; i++)
        await new Promise((r) => setTimeout(r, 50));
      return state(rollout);
    };

    it('refuses the 24-POST attack: no key, random device ids, one address; no halt', async () => {
      const fleet = await installs(40, 8);
      const rollout = await start('1.1.0', 1000); // a fresh 10% canary
      // The attack as found: 24 POSTs, no credential, random device ids, terrible canary numbers.
      const forged = (id: string) =>
        makeBatch(id, [
          makeRecord({
            model: MODEL,
            version: '1.1.0',
            latenciesMs: Array(900).fill(500),
            errors: { E_HEALTH_CHECK: 100 },
          }),
        ]);
      for (let i = 0; i < 24; i++) {
        const batch = { ...forged(newInstall()), deviceId: `attacker-${i}-${Math.random()}` };
        expect((await postBatch(t.server.url, batch, { unsigned: true, from: '127.66.0.1' })).status).toBe(
          400,
        );
        const keyed = forged(newInstall());
        expect((await postBatch(t.server.url, keyed, { unsigned: true, from: '127.66.0.1' })).status).toBe(
          401,
        );
        // With fresh keys it even signs: accepted as telemetry, but keys made after the rollout
        // started never count for it (they could have been ground to fall in its bucket).
        expect((await postBatch(t.server.url, forged(newInstall()), { from: '127.66.0.1' })).status).toBe(
          202,
        );
      }
      // Known installs lying about their release (outside the bucket, claiming the candidate): not counted.
      const { canary } = await split(rollout, fleet);
      const outside = fleet.filter((i) => !canary.includes(i));
      for (const i of outside.slice(0, 12)) expect(await post(i, [report('1.1.0', 7, true)])).toBe(202);
      await new Promise((r) => setTimeout(r, 200)); // past the monitor's throttle
      expect(await state(rollout)).toBe('active');
      expect((await verdict(rollout)).decision).toBe('insufficient-data');
      expect(await t.server.canary!.evidence.evidence(rollout.id)).toEqual([]);
      await t.operator.halt(rollout.id, 'test done');
    });

    it('leaves a healthy canary running on honest evidence', async () => {
      const fleet = await installs(64, 16);
      const rollout = await start('1.1.0', 5000);
      const arms = await honest(rollout, fleet, false);
      const v = await verdict(rollout);
      expect(v.decision).toBe('healthy');
      expect(v.evidence.sources!.canary.prefixes).toBeGreaterThanOrEqual(POLICY.minPrefixes);
      expect(await state(rollout)).toBe('active');
      // The monitor read the rows change by change over its looks (the rollout is still active):
      // they are what one full read gives, also for a row changed after the monitor's last look.
      expect(await post(arms.control[0]!, [report('1.0.0', 7)])).toBe(202);
      const side = await openStorage({ dataDir: t.dataDir, databaseUrl: t.databaseUrl });
      try {
        const order = (list: InstallEvidence[]) =>
          [...list].sort((a, b) => `${a.arm}${a.deviceId}`.localeCompare(`${b.arm}${b.deviceId}`));
        const full = await new CanaryEvidenceStore(side.db).evidence(rollout.id);
        expect(full.length).toBeGreaterThan(2 * POLICY.minInstalls);
        expect(order(await t.server.canary!.evidence.evidence(rollout.id))).toEqual(order(full));
      } finally {
        await side.registry.close();
        await side.blobs.close();
      }
      await t.operator.halt(rollout.id, 'test done');
    });

    it('halts a regressed canary from honest installs, with an audit entry and a webhook', async () => {
      const fleet = await installs(64, 16);
      const rollout = await start('1.2.0', 5000);
      await honest(rollout, fleet, true);
      expect(await halted(rollout)).toBe('halted');
      const { entries } = await t.viewer.audit({ app: 'demo-app', model: MODEL, limit: 5 });
      const halt = entries.find((e) => e.action === 'rollout.halt' && e.actor === 'canary-analysis');
      expect(halt).toMatchObject({ details: { rolloutId: rollout.id, fromShareBps: 5000 } });
      const evidence = (halt!.details as { evidence: { canary: { version: string }; sources: unknown } })
        .evidence;
      expect(evidence.canary.version).toBe('1.2.0');
      const sources = evidence.sources as { canary: { prefixes: number }; control: { prefixes: number } };
      expect(sources.canary.prefixes).toBeGreaterThanOrEqual(POLICY.minPrefixes);
      expect(sources.control.prefixes).toBeGreaterThanOrEqual(POLICY.minPrefixes);
      for (let i = 0; i < 50 && !hooks.received.some((h) => h.rollout?.id === rollout.id); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(hooks.received.find((h) => h.rollout?.id === rollout.id)?.reason).toMatch(
        /p95 latency|error rate/,
      );
      const manifest = ManifestEnvelopeSchema.parse(
        await (await fetch(`${t.server.url}/v1/apps/demo-app/channels/stable/manifest`)).json(),
      );
      expect(manifest.signed.models[0]).toMatchObject({ production: '1.0.0', rollout: null });
    });

    it('does not let a flood of healthy forged records mask a regression', async () => {
      const fleet = await installs(64, 16);
      const attackers = await installs(40, 1); // known installs, all on one network
      const rollout = await start('1.2.0', 5000);
      // The flood goes first, so the monitor sees it before the honest data.
      const inBucket = (await split(rollout, attackers)).canary;
      expect(inBucket.length).toBeGreaterThan(CAPS.maxInstallsPerPrefix);
      for (const a of inBucket) {
        // Four batches of 3,000: the fourth would take it past 10,000 events and is not counted.
        for (let k = 0; k < 4; k++) expect(await post(a, [report('1.2.0', 900 + k, false, 3000)])).toBe(202);
      }
      // Fresh keys (made after the rollout started) and installs outside the bucket flood too.
      const fresh = Array.from({ length: 10 }, (_, k) => ({ id: newInstall(), from: `127.99.${k}.1` }));
      for (const f of fresh) expect(await post(f, [report('1.2.0', 5, false, 5000)])).toBe(202);
      await honest(rollout, fleet, true);
      expect(await halted(rollout)).toBe('halted');
      // The caps held: one network brought at most 6 installs, each at most 10,000 events.
      const rows = await t.server.canary!.evidence.evidence(rollout.id);
      const flood = rows.filter((r) => inBucket.some((a) => a.id === r.deviceId));
      expect(flood).toHaveLength(CAPS.maxInstallsPerPrefix);
      for (const r of flood) expect(r.inferences + r.errors).toBe(9000);
      expect(rows.filter((r) => fresh.some((f) => f.id === r.deviceId))).toEqual([]);
    });

    it('needs evidence from enough installs on enough networks before any halt', async () => {
      // A regression reported by 40 installs on 3 networks: one short of the 4 a verdict needs.
      const few = await installs(40, 3);
      const more = await installs(16, 4);
      const rollout = await start('1.2.0', 5000);
      await honest(rollout, few, true);
      const v = await verdict(rollout);
      expect(v.decision).toBe('insufficient-data');
      expect(v.reasons.join(' ')).toMatch(/on 3 networks; a verdict needs 12 installs on 4 networks/);
      expect(await state(rollout)).toBe('active');
      // The same regression seen from four more networks is enough.
      await honest(rollout, more, true);
      expect(await halted(rollout)).toBe('halted');
    });

    it('forgets installs silent past the retention, and the evidence of rollouts that ended', async () => {
      const side = await openStorage({ dataDir: t.dataDir, databaseUrl: t.databaseUrl });
      try {
        const count = async (table: 'telemetry_installs' | 'canary_evidence') =>
          Number(
            (
              await side.db
                .selectFrom(table)
                .select((eb) => eb.fn.countAll().as('n'))
                .executeTakeFirstOrThrow()
            ).n,
          );
        const installsBefore = await count('telemetry_installs');
        const evidenceBefore = await count('canary_evidence');
        expect(installsBefore).toBeGreaterThan(200);
        expect(evidenceBefore).toBeGreaterThan(50);
        // A day in the future as the cutoff: every install is silent past it, every rollout ended before it.
        const cutoff = Math.floor(Date.now() / 1000) + 86_400;
        const pruned = await pruneTelemetry(side.db, side.dialect, {
          perDeviceBefore: cutoff,
          aggregatesBefore: 0,
        });
        expect(pruned).toMatchObject({ installs: installsBefore, evidence: evidenceBefore });
        expect(await count('telemetry_installs')).toBe(0);
        expect(await count('canary_evidence')).toBe(0);
      } finally {
        await side.registry.close();
        await side.blobs.close();
      }
    });
  });
}
