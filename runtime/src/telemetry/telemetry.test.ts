// Unit tests on fake-indexeddb; the same outbox runs on Chromium's IndexedDB in
// telemetry.browser.test.ts and in the end-to-end tests.
import 'fake-indexeddb/auto';
import {
  generateInstallKey,
  parseValue,
  type Release,
  TELEMETRY_SIGNATURE_HEADER,
  type TelemetryBatch,
  TelemetryBatchSchema,
  verifyTelemetryBody,
} from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import { TEST_DEVICE_ID, testBatch, testRecord } from '../../../test/support/telemetry-batch.ts';
import { TelemetryCollector } from './collector.ts';
import { TelemetryOutbox } from './outbox.ts';
import { TelemetryReporter } from './reporter.ts';
import { TelemetrySender } from './sender.ts';

const release = {
  monitoring: {
    features: [
      {
        name: 'energy',
        source: { from: 'input', tensor: 'x', reduce: 'rms' },
        binEdges: [0.1, 0.5],
        reference: [0.3, 0.4, 0.3],
      },
      {
        name: 'score',
        source: { from: 'output', tensor: 'y', reduce: 'first' },
        binEdges: [0.5],
        reference: [0.5, 0.5],
      },
    ],
  },
} as unknown as Release;

/** An Ed25519 public key, as device ids are. */
const DEVICE_ID = TEST_DEVICE_ID;
const key = { model: 'vad', version: '1.0.0', backend: 'wasm' as const, role: 'active' as const };
let dbCounter = 0;
const freshOutbox = (limits = { maxBatches: 100, maxAgeMs: 60_000 }, now = Date.now) =>
  TelemetryOutbox.open(`outbox-${dbCounter++}`, limits, now);

function sampleBatch(id: number): TelemetryBatch {
  return testBatch([testRecord({ ...key, inferences: 1, latencyMs: { '1': 1 } })], {
    batchId: `00000000-0000-4000-8000-${String(id).padStart(12, '0')}`,
  });
}

describe('TelemetryCollector', () => {
  it('counts inferences, latencies, errors and feature bins per release and backend', () => {
    const collector = new TelemetryCollector();
    collector.recordInference(
      key,
      release,
      2,
      { x: new Float32Array([0.05, 0.05]) },
      { y: new Float32Array([0.9]) },
    );
    collector.recordInference(
      key,
      release,
      3,
      { x: new Float32Array([1, 1]) },
      { y: new Float32Array([0.1]) },
    );
    collector.recordError(key, 'E_INPUT');
    collector.recordInference(
      { ...key, backend: 'webgpu' },
      release,
      5,
      { x: new Float32Array([0.2]) },
      { y: new Float32Array([0.2]) },
    );
    const records = collector.drain();
    expect(records).toHaveLength(2);
    const wasm = records.find((r) => r.backend === 'wasm')!;
    expect(wasm.inferences).toBe(2);
    expect(wasm.errors).toEqual({ E_INPUT: 1 });
    expect(wasm.features).toEqual([
      { name: 'energy', counts: [1, 0, 1] },
      { name: 'score', counts: [1, 1] },
    ]);
    expect(Object.values(wasm.latencyMs).reduce((a, b) => a + b)).toBe(2);
    expect(collector.isEmpty).toBe(true);
  });

  it('produces records the protocol accepts', async () => {
    const collector = new TelemetryCollector();
    collector.recordInference(
      key,
      release,
      1.5,
      { x: new Float32Array([0.3]) },
      { y: new Float32Array([0.7]) },
    );
    collector.recordShadowComparison({ ...key, version: '1.1.0' }, '1.0.0', 0.002, true);
    const outbox = await freshOutbox();
    const segment = { browser: 'firefox', browserMajor: 133, os: 'linux', deviceClass: 'mid' } as const;
    const [batch] = await new TelemetryReporter(
      collector,
      outbox,
      { deviceId: DEVICE_ID, app: 'demo-app', channel: 'stable', runtimeVersion: '0.1.0' },
      undefined,
      segment,
    ).seal();
    const parsed = parseValue(TelemetryBatchSchema, batch, 'batch');
    expect(parsed.records.map((r) => r.role).sort()).toEqual(['active', 'shadow']);
    // Every record says which kind of device sent it (what the canary judges segments by).
    expect(parsed.records.map((r) => r.segment)).toEqual([segment, segment]);
    expect(await outbox.size()).toBe(1);
  });
});

describe('TelemetryOutbox', () => {
  it('drops the oldest batches past its bound, and counts them once', async () => {
    const outbox = await freshOutbox({ maxBatches: 3, maxAgeMs: 60_000 });
    for (let i = 0; i < 5; i++) await outbox.enqueue(sampleBatch(i));
    const kept = await outbox.peek(10);
    expect(kept.map((q) => q.batch.batchId.slice(-1))).toEqual(['2', '3', '4']);
    expect(await outbox.takeDroppedCount()).toBe(2);
    expect(await outbox.takeDroppedCount()).toBe(0);
  });

  it('drops batches older than its age bound', async () => {
    let clock = 1_000_000;
    const outbox = await freshOutbox({ maxBatches: 100, maxAgeMs: 1000 }, () => clock);
    await outbox.enqueue(sampleBatch(1));
    clock += 2000;
    await outbox.enqueue(sampleBatch(2));
    expect((await outbox.peek(10)).map((q) => q.batch.batchId.slice(-1))).toEqual(['2']);
    expect(await outbox.takeDroppedCount()).toBe(1);
  });
});

describe('TelemetrySender', () => {
  it('keeps a batch until the server acknowledges it, backing off with jitter meanwhile', async () => {
    const outbox = await freshOutbox();
    await outbox.enqueue(sampleBatch(1));
    await outbox.enqueue(sampleBatch(2));
    const seen: string[] = [];
    let online = false;
    const fetchStub = (async (_url: string, init: RequestInit) => {
      const batch = JSON.parse(new TextDecoder().decode(init.body as Uint8Array)) as TelemetryBatch;
      seen.push(`${online ? 'up' : 'down'}:${batch.batchId.slice(-1)}`);
      if (!online) throw new TypeError('Failed to fetch');
      return new Response(null, { status: 202 });
    }) as typeof fetch;
    const sender = new TelemetrySender(outbox, {
      endpoint: 'http://x/v1/telemetry',
      fetch: fetchStub,
      random: () => 0.5,
      baseDelayMs: 100,
    });

    const first = await sender.flush();
    expect(first).toEqual({ sent: 0, discarded: 0, retryInMs: 50 });
    expect((await sender.flush()).retryInMs).toBe(100); // doubled ceiling, same jitter draw
    expect(await outbox.size()).toBe(2);

    online = true;
    expect(await sender.flush()).toEqual({ sent: 2, discarded: 0 });
    expect(await outbox.size()).toBe(0);
    expect(seen).toEqual(['down:1', 'down:1', 'up:1', 'up:2']);
  });

  it("signs each body with the install's key, as the server verifies it", async () => {
    const install = await generateInstallKey();
    const outbox = await freshOutbox();
    await outbox.enqueue({ ...sampleBatch(1), deviceId: install.deviceId });
    const verdicts: boolean[] = [];
    const sender = new TelemetrySender(outbox, {
      endpoint: 'http://x/v1/telemetry',
      installKey: install.privateKey,
      fetch: (async (_url: string, init: RequestInit) => {
        const headers = init.headers as Record<string, string>;
        const body = init.body as Uint8Array;
        verdicts.push(await verifyTelemetryBody(install.deviceId, body, headers[TELEMETRY_SIGNATURE_HEADER]));
        return new Response(null, { status: verdicts.at(-1) ? 202 : 401 });
      }) as typeof fetch,
    });
    expect(await sender.flush()).toEqual({ sent: 1, discarded: 0 });
    expect(verdicts).toEqual([true]);
  });

  it('drops a batch the server refuses for good, and counts it as dropped', async () => {
    const outbox = await freshOutbox();
    await outbox.enqueue(sampleBatch(1));
    const sender = new TelemetrySender(outbox, {
      endpoint: 'http://x/v1/telemetry',
      fetch: (async () => new Response('{"error":{"code":"E_MALFORMED"}}', { status: 400 })) as typeof fetch,
    });
    expect(await sender.flush()).toEqual({ sent: 0, discarded: 1 });
    expect(await outbox.takeDroppedCount()).toBe(1);
  });

  it('retries on 429 and 5xx rather than dropping', async () => {
    for (const status of [429, 500, 503]) {
      const outbox = await freshOutbox();
      await outbox.enqueue(sampleBatch(1));
      const sender = new TelemetrySender(outbox, {
        endpoint: 'http://x/v1/telemetry',
        fetch: (async () => new Response(null, { status })) as typeof fetch,
      });
      expect((await sender.flush()).retryInMs).toBeTypeOf('number');
      expect(await outbox.size()).toBe(1);
    }
  });
});
