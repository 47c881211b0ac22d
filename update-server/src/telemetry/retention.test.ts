// The runtime's outbox runs on fake-indexeddb here; the sender talks to the real server below.
import 'fake-indexeddb/auto';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededBytes, type TelemetryBatch } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_OUTBOX_LIMITS, TelemetryOutbox } from '../../../runtime/src/telemetry/outbox.ts';
import { TelemetrySender } from '../../../runtime/src/telemetry/sender.ts';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { startServer } from '../server.ts';
import { openStorage, type Storage } from '../storage/open.ts';
import {
  MAX_CLOCK_SKEW_MS,
  MIN_RETENTION_DAYS,
  RUNTIME_OUTBOX_MAX_AGE_MS,
  retentionPolicy,
} from './retention.ts';
import {
  installFor,
  installPrivateKey,
  makeBatch,
  makeRecord,
  postBatch,
  uniformMonitoring,
} from './testing.ts';

const DAY = 86_400_000;
const MODEL = 'retained';
const T0 = Date.parse('2030-03-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

describe('the retention policy', () => {
  it('outlasts the runtime outbox, whose max age it mirrors', () => {
    expect(RUNTIME_OUTBOX_MAX_AGE_MS).toBe(DEFAULT_OUTBOX_LIMITS.maxAgeMs);
    for (const days of [MIN_RETENTION_DAYS, 30]) {
      // A batch on its outbox's last day, from a device whose clock is behind, is still accepted.
      expect(retentionPolicy({ days }).maxBatchAgeMs).toBeGreaterThanOrEqual(
        DEFAULT_OUTBOX_LIMITS.maxAgeMs + MAX_CLOCK_SKEW_MS,
      );
    }
  });

  it('refuses at start-up a retention the outbox would outlive, before opening anything', async () => {
    expect(() => retentionPolicy({ days: MIN_RETENTION_DAYS - 1 })).toThrow(/at least 10/);
    expect(() => retentionPolicy({ days: Number.NaN })).toThrow(/telemetryRetentionDays/);
    expect(() => retentionPolicy({ days: 30, aggregateDays: 20 })).toThrow(/telemetryAggregateRetentionDays/);
    expect(retentionPolicy({ days: 120 }).aggregatesMs).toBe(120 * DAY);
    const dataDir = join(tmpdir(), `edgeship-retention-${process.pid}-${Date.now()}`);
    await expect(
      startServer({ dataDir, logLevel: 'silent', createKeys: true, telemetryRetentionDays: 7 }),
    ).rejects.toThrow(/telemetryRetentionDays must be at least 10/);
    expect(existsSync(dataDir)).toBe(false);
  });
});

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`telemetry retention on ${dialect}`, () => {
    let t: TestServer;
    let side: Storage;
    let clock = T0;
    let seq = 0;
    const device = (prefix: string) => `${prefix}-${dialect}-${++seq}`.padEnd(8, '0');

    beforeAll(async () => {
      t = await startTestServer({
        postgres: dialect === 'postgres',
        telemetryClock: () => new Date(clock),
        // Chunks of 7 rows: the 21 old rows take three full chunks and an empty one. The test
        // prunes by hand, at the times it chooses.
        telemetry: { pruneChunkRows: 7, pruneIntervalMs: 0 },
        canary: { enabled: false },
      });
      await publish(t, seededBytes(3000, 41), {
        model: MODEL,
        version: '1.0.0',
        monitoring: uniformMonitoring(),
      });
      // A second connection that only counts rows.
      side = await openStorage({ dataDir: t.dataDir, databaseUrl: t.databaseUrl });
    });
    afterAll(async () => {
      await side?.registry.close();
      await side?.blobs.close();
      await t?.stop();
    });

    /** A batch the device sealed at `sealedAt` (its clock), with `n` inferences. */
    const sealedAt = (deviceId: string, at: number, n = 3): TelemetryBatch =>
      makeBatch(
        deviceId,
        [makeRecord({ model: MODEL, version: '1.0.0', latenciesMs: Array.from({ length: n }, () => 4) })],
        {
          windowStart: iso(at - 60_000),
          windowEnd: iso(at),
        },
      );

    const rows = async () => {
      const count = async (
        table: 'telemetry_batches' | 'telemetry_device_windows' | 'telemetry_aggregates',
      ) =>
        Number(
          (
            await side.db
              .selectFrom(table)
              .select((eb) => eb.fn.countAll<number | string>().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        );
      return {
        batches: await count('telemetry_batches'),
        deviceWindows: await count('telemetry_device_windows'),
        aggregates: await count('telemetry_aggregates'),
      };
    };
    const inferences = async () =>
      (await t.server.telemetry.store.aggregates({ app: 'demo-app', channel: 'stable', since: 0 })).reduce(
        (n, [, v]) => n + v.inferences,
        0,
      );
    const refusal = async (batch: TelemetryBatch) => {
      const { status, body } = await postBatch(t.server.url, batch);
      return { status, code: (body as { error?: { code: string } }).error?.code };
    };

    /** `n` batches sealed at `at`, each from a new device, posted and accepted, then kept in `into`. */
    const acceptInto = async (into: TelemetryBatch[], n: number, prefix: string, at: number) => {
      for (let i = 0; i < n; i++) {
        const batch = sealedAt(device(prefix), at);
        expect((await postBatch(t.server.url, batch)).body).toMatchObject({ status: 'accepted' });
        into.push(batch);
      }
    };
    /** What a pruning run reports: one batch id and device window per pruned batch. */
    const pruned = (perBatch: number, aggregates: number) => ({
      batches: perBatch,
      deviceWindows: perBatch,
      aggregates,
      installs: 0, // no canary here: no install is registered
      evidence: 0,
    });

    const old: TelemetryBatch[] = [];
    const recent: TelemetryBatch[] = [];

    it('refuses a batch sealed too long ago to be de-duplicated, and counts nothing', async () => {
      clock = T0;
      const tooOld = sealedAt(device('old'), T0 - 28 * DAY - 60_000);
      expect(await refusal(tooOld)).toEqual({ status: 422, code: 'E_TOO_OLD' });
      expect(await rows()).toEqual({ batches: 0, deviceWindows: 0, aggregates: 0 });
      // Just inside: a device that was offline for weeks still gets its batch counted.
      const lateButFine = sealedAt(device('late'), T0 - 27 * DAY);
      expect((await postBatch(t.server.url, lateButFine)).body).toMatchObject({ status: 'accepted' });
      old.push(lateButFine);
    });

    it('refuses a batch sealed more than a day ahead of the server clock, and counts nothing', async () => {
      const before = await rows();
      const future = sealedAt(device('future'), T0 + DAY + 60_000);
      expect(await refusal(future)).toEqual({ status: 422, code: 'E_FROM_FUTURE' });
      expect(await rows()).toEqual(before);
      expect(await t.server.telemetry.store.acceptedBatchIds([future.batchId])).toEqual(new Set());
      // A device clock an hour fast is within the bound.
      const fast = sealedAt(device('fast'), T0 + 3_600_000);
      expect((await postBatch(t.server.url, fast)).body).toMatchObject({ status: 'accepted' });
      old.push(fast);
    });

    it('prunes batch ids and per-device rows past the retention, in chunks, and keeps recent ones', async () => {
      await acceptInto(old, 21 - old.length, 'old', T0);
      clock = T0 + 20 * DAY;
      await acceptInto(recent, 10, 'recent', clock);
      // One device window per batch (each from its own device); one aggregate row per server window.
      expect(await rows()).toEqual({ batches: 31, deviceWindows: 31, aggregates: 2 });
      expect(await inferences()).toBe(31 * 3);

      clock = T0 + 35 * DAY;
      expect(await t.server.telemetry.pruner.runOnce()).toEqual(pruned(21, 0));
      // Per-release aggregates have their own, longer retention (90 days): traffic stays.
      expect(await rows()).toEqual({ batches: 10, deviceWindows: 10, aggregates: 2 });
      expect(await inferences()).toBe(31 * 3);
      const store = t.server.telemetry.store;
      expect((await store.acceptedBatchIds(recent.map((b) => b.batchId))).size).toBe(10);
      expect((await store.acceptedBatchIds(old.map((b) => b.batchId))).size).toBe(0);
      // A second run finds nothing left to delete.
      expect(await t.server.telemetry.pruner.runOnce()).toEqual(pruned(0, 0));
    });

    it('answers a retry inside the retention window "duplicate" after pruning, and refuses a pruned one', async () => {
      const retry = recent[0]!;
      expect(await postBatch(t.server.url, retry)).toEqual({
        status: 202,
        body: { batchId: retry.batchId, status: 'duplicate' },
      });
      // The pruned batch's id is gone, but its time gives it away: refused, not counted again.
      expect(await refusal(old.at(-1)!)).toEqual({ status: 422, code: 'E_TOO_OLD' });
      expect(await inferences()).toBe(31 * 3);
      expect(await rows()).toEqual({ batches: 10, deviceWindows: 10, aggregates: 2 });
    });

    it('shows in the fleet view that device counts cover the shorter retention only', async () => {
      const response = await fetch(
        `${t.server.url}/v1/admin/fleet?app=demo-app&channel=stable&model=${MODEL}&since=${iso(T0 - DAY)}&until=${iso(T0 + 21 * DAY)}`,
        { headers: { authorization: `Bearer ${t.server.tokens!.viewer}` } },
      );
      expect(response.status).toBe(200);
      const report = (await response.json()) as {
        versions: Array<{ version: string; inferences: number; devices: number }>;
      };
      // Traffic of both windows (aggregates kept 90 days), devices of the recent one only.
      expect(report.versions).toMatchObject([{ version: '1.0.0', inferences: 31 * 3, devices: 10 }]);
    });

    it('prunes the per-release aggregates once past their own retention', async () => {
      clock = T0 + 95 * DAY;
      expect(await t.server.telemetry.pruner.runOnce()).toEqual(pruned(10, 1));
      expect(await rows()).toEqual({ batches: 0, deviceWindows: 0, aggregates: 1 });
      expect(await inferences()).toBe(10 * 3);
    });

    it('has the runtime sender drop a batch refused as too old rather than retry it', async () => {
      const outbox = await TelemetryOutbox.open(`retention-${dialect}`, DEFAULT_OUTBOX_LIMITS, () => clock);
      const install = installFor(device('outbox'));
      const stale = sealedAt(install, clock - 29 * DAY);
      const fresh = sealedAt(install, clock);
      await outbox.enqueue(stale);
      await outbox.enqueue(fresh);
      const sender = new TelemetrySender(outbox, {
        endpoint: `${t.server.url}/v1/telemetry`,
        installKey: await installPrivateKey(install),
      });
      expect(await sender.flush()).toEqual({ sent: 1, discarded: 1 });
      expect(await outbox.size()).toBe(0);
      // The drop is reported with the device's next batch, so the server knows data is missing.
      expect(await outbox.takeDroppedCount()).toBe(1);
      expect(await t.server.telemetry.store.acceptedBatchIds([stale.batchId, fresh.batchId])).toEqual(
        new Set([fresh.batchId]),
      );
      outbox.close();
    });
  });
}
