import {
  bucketOf,
  DEFAULT_PSI_THRESHOLD,
  type Histogram,
  histogramQuantile,
  mergeHistograms,
  recordValue,
  seededBytes,
  signTelemetryBody,
  TELEMETRY_SIGNATURE_HEADER,
  type TelemetryRecord,
} from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { windowOf } from './aggregate.ts';
import {
  installFor,
  installPrivateKey,
  latencies,
  makeBatch,
  makeRecord,
  postBatch,
  postBytes,
  shadowRecords,
  uniformMonitoring,
} from './testing.ts';

const MODEL = 'kws';
const CAP = { batchesPerWindow: 5, inferencesPerWindow: 100_000 };

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`telemetry on ${dialect}`, () => {
    let t: TestServer;
    let seq = 0;
    const device = (prefix: string) => `${prefix}-${dialect}-${++seq}`.padEnd(8, '0');

    beforeAll(async () => {
      t = await startTestServer({
        postgres: dialect === 'postgres',
        telemetry: { deviceCap: CAP },
      });
      for (const version of ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0']) {
        await publish(t, seededBytes(5000, version.length + Number(version.at(2))), {
          model: MODEL,
          version,
          monitoring: uniformMonitoring(),
        });
      }
      await t.operator.promoteRelease('demo-app', 'stable', MODEL, '1.0.0');
    });
    afterAll(async () => {
      await t?.stop();
    });

    const fleet = async (query = '') => {
      const response = await fetch(
        `${t.server.url}/v1/admin/fleet?app=demo-app&channel=stable&model=${MODEL}${query}`,
        {
          headers: { authorization: `Bearer ${t.server.tokens!.viewer}` },
        },
      );
      expect(response.status).toBe(200);
      return (await response.json()) as {
        versions: Array<{
          version: string;
          devices: number;
          share: number;
          inferences: number;
          errors: number;
          errorRate: number;
          errorsByCode: Record<string, number>;
          latencyMs: { p50: number; p95: number; p99: number };
          drift: Record<
            string,
            { psi: number; jsDistance: number; ks: number; drifted: boolean; samples: number }
          >;
        }>;
        shadow: Array<{
          candidate: string;
          against: string;
          compared: number;
          agreement: number;
          absDiff: { p50: number };
        }>;
        windows: Array<{ start: string; versions: unknown[] }>;
        rollouts: Array<{ id: string; canary: { decision: string } | null }>;
      };
    };
    const version = async (v: string) => (await fleet()).versions.find((x) => x.version === v);

    it('accepts a batch after it is committed and aggregates it per release', async () => {
      const batch = makeBatch(device('happy'), [
        makeRecord({
          model: MODEL,
          version: '1.0.0',
          latenciesMs: [5, 6, 7, 8],
          errors: { E_INPUT: 1 },
          energy: [1, 0, 0, 1, 0, 0, 1, 0, 0, 1],
        }),
      ]);
      const answer = await postBatch(t.server.url, batch);
      expect(answer).toEqual({ status: 202, body: { batchId: batch.batchId, status: 'accepted' } });
      const stats = await version('1.0.0');
      expect(stats).toMatchObject({ inferences: 4, errors: 1, errorRate: 0.2, errorsByCode: { E_INPUT: 1 } });
      expect(stats!.devices).toBeGreaterThanOrEqual(1);
      expect(stats!.drift.energy!.samples).toBe(4);
    });

    it('refuses bad batches with typed errors', async () => {
      const good = makeBatch(device('bad'), [
        makeRecord({ model: MODEL, version: '1.0.0', latenciesMs: [1] }),
      ]);
      // Signed by the good batch's install (a body that is not a batch is refused before the check).
      const key = (await installPrivateKey(good.deviceId))!;
      const post = async (body: string, headers: Record<string, string> = {}) => {
        const bytes = new TextEncoder().encode(body);
        const answer = await postBytes(`${t.server.url}/v1/telemetry`, bytes, {
          'content-type': 'application/json',
          [TELEMETRY_SIGNATURE_HEADER]: await signTelemetryBody(key, bytes),
          ...headers,
        });
        return {
          status: answer.status,
          code: (JSON.parse(answer.text) as { error: { code: string } }).error.code,
        };
      };
      // Unsigned, signed by another install, or a signature over other bytes: 401, nothing counted.
      expect(await postBatch(t.server.url, good, { unsigned: true })).toMatchObject({
        status: 401,
        body: { error: { code: 'E_SIGNATURE' } },
      });
      const other = (await installPrivateKey(installFor(device('other-key'))))!;
      const bytes = new TextEncoder().encode(JSON.stringify(good));
      expect(
        await post(JSON.stringify(good), {
          [TELEMETRY_SIGNATURE_HEADER]: await signTelemetryBody(other, bytes),
        }),
      ).toEqual({
        status: 401,
        code: 'E_SIGNATURE',
      });
      expect(
        await post(JSON.stringify({ ...good, dropped: 1 }), {
          [TELEMETRY_SIGNATURE_HEADER]: await signTelemetryBody(key, bytes),
        }),
      ).toEqual({
        status: 401,
        code: 'E_SIGNATURE',
      });
      expect(await post('{not json')).toEqual({ status: 400, code: 'E_BAD_JSON' });
      expect(await post(JSON.stringify({ ...good, extra: 1 }))).toEqual({
        status: 400,
        code: 'E_VALIDATION',
      });
      expect(await post(JSON.stringify({ ...good, batchId: 'not-a-uuid' }))).toEqual({
        status: 400,
        code: 'E_VALIDATION',
      });
      expect(await post(JSON.stringify({ ...good, records: [] }))).toEqual({
        status: 400,
        code: 'E_VALIDATION',
      });
      expect(await post(JSON.stringify(good), { 'content-type': 'text/plain' })).toEqual({
        status: 415,
        code: 'E_UNSUPPORTED_MEDIA_TYPE',
      });
      expect(await post(JSON.stringify(good), { 'idempotency-key': crypto.randomUUID() })).toEqual({
        status: 400,
        code: 'E_VALIDATION',
      });
      expect(await post(JSON.stringify({ ...good, pad: 'x'.repeat(300 * 1024) }))).toEqual({
        status: 413,
        code: 'E_TOO_LARGE',
      });
      const unknown = makeBatch(good.deviceId, [
        makeRecord({ model: MODEL, version: '9.9.9', latenciesMs: [1] }),
      ]);
      expect(await post(JSON.stringify(unknown))).toEqual({ status: 422, code: 'E_VALIDATION' });
      const wrongBins = makeBatch(good.deviceId, [
        makeRecord({ model: MODEL, version: '1.0.0', latenciesMs: [1], energy: [1, 2, 3] }),
      ]);
      expect(await post(JSON.stringify(wrongBins))).toEqual({ status: 422, code: 'E_VALIDATION' });
      // None of them was counted, and the good one still is accepted.
      expect((await postBatch(t.server.url, good)).status).toBe(202);
    });

    it('counts a retried batch once, however often and concurrently it is retried', async () => {
      const before = (await version('1.0.0'))!.inferences;
      const batch = makeBatch(device('retry'), [
        makeRecord({ model: MODEL, version: '1.0.0', latenciesMs: [3, 3, 3] }),
      ]);
      const first = await postBatch(t.server.url, batch);
      const retries = await Promise.all(Array.from({ length: 6 }, () => postBatch(t.server.url, batch)));
      expect(first).toEqual({ status: 202, body: { batchId: batch.batchId, status: 'accepted' } });
      for (const r of retries)
        expect(r).toEqual({ status: 202, body: { batchId: batch.batchId, status: 'duplicate' } });
      expect((await version('1.0.0'))!.inferences).toBe(before + 3);

      // Concurrent first deliveries too (two connections racing on one idempotency key).
      const racing = makeBatch(device('race'), [
        makeRecord({ model: MODEL, version: '1.0.0', latenciesMs: [2] }),
      ]);
      const answers = await Promise.all(Array.from({ length: 8 }, () => postBatch(t.server.url, racing)));
      expect(answers.map((a) => (a.body as { status: string }).status).sort()).toEqual([
        'accepted',
        ...Array(7).fill('duplicate'),
      ]);
      expect((await version('1.0.0'))!.inferences).toBe(before + 4);
    });

    it("caps one device's contribution per window", async () => {
      // Retried if the sequence straddles a window boundary (the cap resets there, by design).
      for (;;) {
        const windowAtStart = windowOf(Date.now(), 60);
        const id = device('capped');
        const before = (await version('1.0.0'))!.inferences;
        const answers = [];
        for (let i = 0; i < CAP.batchesPerWindow + 2; i++) {
          answers.push(
            await postBatch(
              t.server.url,
              makeBatch(id, [makeRecord({ model: MODEL, version: '1.0.0', latenciesMs: [1] })]),
            ),
          );
        }
        if (windowOf(Date.now(), 60) !== windowAtStart) continue;
        expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202, 429, 429]);
        expect(answers[5]!.body).toMatchObject({ error: { code: 'E_RATE_LIMITED' } });
        expect((await version('1.0.0'))!.inferences).toBe(before + CAP.batchesPerWindow);
        // Another device is not affected.
        const other = makeBatch(device('other'), [
          makeRecord({ model: MODEL, version: '1.0.0', latenciesMs: [1] }),
        ]);
        expect((await postBatch(t.server.url, other)).status).toBe(202);
        // A single batch larger than the whole cap can never be accepted: a permanent 422.
        const huge = makeBatch(device('huge'), [
          makeRecord({ model: MODEL, version: '1.0.0', inferences: CAP.inferencesPerWindow + 1 }),
        ]);
        expect((await postBatch(t.server.url, huge)).status).toBe(422);
        break;
      }
    });

    it('reads percentiles off merged histograms within one bucket of the exact ones', async () => {
      const all: number[] = [];
      const batches = Array.from({ length: 40 }, (_, i) => {
        const samples = latencies(50, 4 + (i % 7), 1000 + i);
        all.push(...samples);
        return makeBatch(device('pct'), [
          makeRecord({ model: MODEL, version: '1.3.0', latenciesMs: samples }),
        ]);
      });
      for (const b of batches) expect((await postBatch(t.server.url, b)).status).toBe(202);
      const stats = (await version('1.3.0'))!;
      expect(stats.inferences).toBe(all.length);
      const sorted = all.slice().sort((a, b) => a - b);
      for (const [q, reported] of [
        [0.5, stats.latencyMs.p50],
        [0.95, stats.latencyMs.p95],
        [0.99, stats.latencyMs.p99],
      ] as const) {
        const exact = sorted[Math.ceil(q * sorted.length) - 1]!;
        expect(Math.abs(bucketOf(reported) - bucketOf(exact))).toBeLessThanOrEqual(1);
      }
      // Merging per-batch histograms is exact: the sum equals the histogram of all samples.
      const whole: Histogram = {};
      for (const v of all) recordValue(whole, v);
      const merged = mergeHistograms(...batches.map((b) => b.records[0]!.latencyMs));
      expect(merged).toEqual(whole);
      expect(histogramQuantile(merged, 0.95)).toBe(stats.latencyMs.p95);
    });

    it('reports drift per feature against the release reference', async () => {
      // 1.4.0 sees skewed inputs: everything in the lowest three bins.
      const skewed = [400, 300, 300, 0, 0, 0, 0, 0, 0, 0];
      const batch = makeBatch(device('drift'), [
        makeRecord({ model: MODEL, version: '1.4.0', latenciesMs: Array(1000).fill(2), energy: skewed }),
      ]);
      expect((await postBatch(t.server.url, batch)).status).toBe(202);
      const drift = (await version('1.4.0'))!.drift.energy!;
      expect(drift.psi).toBeGreaterThan(DEFAULT_PSI_THRESHOLD);
      expect(drift.drifted).toBe(true);
      expect(drift.ks).toBeCloseTo(0.7, 6); // CDF gap after bin 3: 1.0 vs 0.3
      expect(drift.samples).toBe(1000);
    });

    it('aggregates shadow agreement per candidate', async () => {
      const records = shadowRecords({
        model: MODEL,
        production: '1.0.0',
        candidate: '1.1.0',
        compared: 100,
        agreements: 93,
        absDiffMilli: 1000 * 0.02, // |diff| = 0.02
        productionMs: 4,
        candidateMs: 6,
      });
      const batch = makeBatch(device('shadow'), records);
      expect((await postBatch(t.server.url, batch)).status).toBe(202);
      const shadow = (await fleet()).shadow.find((s) => s.candidate === '1.1.0')!;
      expect(shadow).toMatchObject({ against: '1.0.0', compared: 100, agreement: 0.93 });
      expect(shadow.absDiff.p50).toBeCloseTo(0.02, 2);
    });

    it('sums the update pipeline per release: downloads, update failures by code, fallbacks, guard fallbacks, persisted storage', async () => {
      const record = (update: TelemetryRecord['update'], download = { bytes: 0, ms: 0 }) => ({
        ...makeRecord({ model: MODEL, version: '1.2.0', latenciesMs: [3] }),
        downloadBytes: download.bytes,
        downloadMs: download.ms,
        update,
      });
      const batches = [
        makeBatch(device('pipe'), [
          record({ downloads: 1, resumed: 1, storagePersisted: true }, { bytes: 4000, ms: 200 }),
        ]),
        makeBatch(device('pipe'), [
          record(
            { downloads: 1, storagePersisted: false, fallbacks: { 'no-webgpu': 1 } },
            { bytes: 5000, ms: 400 },
          ),
        ]),
        makeBatch(device('pipe'), [
          record({ failures: { E_QUOTA: 1, E_HASH: 1 }, guardFallbacks: 1, storagePersisted: true }),
        ]),
      ];
      for (const batch of batches) expect((await postBatch(t.server.url, batch)).status).toBe(202);
      const stats = (await version('1.2.0')) as unknown as { update: Record<string, unknown> };
      expect(stats.update).toEqual({
        downloads: 2,
        downloadBytes: 9000,
        meanDownloadMs: 300,
        resumedShare: 0.5,
        failures: { E_QUOTA: 1, E_HASH: 1 },
        failureRate: 0.5,
        fallbacks: { 'no-webgpu': 1 },
        guardFallbacks: 1,
        persistedShare: 2 / 3,
      });
      // A record from an older runtime, without the report, still aggregates (all zero, nulls).
      expect((await version('1.0.0')) as unknown).toMatchObject({
        update: { downloads: 0, failureRate: null },
      });
    });

    it('exposes per-release metrics for Prometheus', async () => {
      const text = await (await fetch(`${t.server.url}/metrics`)).text();
      expect(text).toMatch(/edgeship_model_inferences_total\{[^}]*model="kws",version="1.0.0"[^}]*\} \d+/);
      expect(text).toMatch(/edgeship_model_errors_total\{[^}]*version="1.0.0"[^}]*code="E_INPUT"\} 1/);
      expect(text).toMatch(
        /edgeship_model_inference_latency_seconds_bucket\{[^}]*version="1.3.0"[^}]*le="\+Inf"\} 2000/,
      );
      expect(text).toMatch(/edgeship_model_drift_psi\{[^}]*version="1.4.0",feature="energy"\} [0-9.]+/);
    });

    it('requires a token for the fleet API', async () => {
      const response = await fetch(`${t.server.url}/v1/admin/fleet?app=demo-app&channel=stable`);
      expect(response.status).toBe(401);
      const bad = await fetch(`${t.server.url}/v1/admin/fleet?app=demo-app`, {
        headers: { authorization: `Bearer ${t.server.tokens!.viewer}` },
      });
      expect(bad.status).toBe(400);
      const openApi = (await (await fetch(`${t.server.url}/v1/openapi.json`)).json()) as { paths: object };
      expect(Object.keys(openApi.paths)).toContain('/fleet');
    });
  });
}
