// Telemetry and shadow evaluation end to end in real Chromium and Firefox ESR: the worker's
// collector and IndexedDB outbox, the chaos proxy between device and server, and the server's
// fleet report.
import { DEVICE_ID_PATTERN } from '@edgeship/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import { testBatch, testRecord } from '../../test/support/telemetry-batch.ts';
import {
  serverWithVad,
  sileroChirpInputs,
  startTelemetryRuntime,
  stopAll,
  uniqueName,
} from '../test-fixtures/runtime-harness.ts';
import type { CreateRuntimeOptions, Runtime } from './client.ts';
import type { NamedTensors } from './engines/tensor.ts';
import { ModelStore } from './store/model-store.ts';

interface VersionStats {
  version: string;
  devices: number;
  inferences: number;
  errors: number;
}
interface ShadowStats {
  candidate: string;
  against: string;
  compared: number;
  agreements: number;
  agreement: number | null;
}
interface FleetReport {
  versions: VersionStats[];
  shadow: ShadowStats[];
}

afterEach(stopAll);

async function setUp(extra: Partial<CreateRuntimeOptions> = {}) {
  const server = await serverWithVad('tm');
  // What a reload starts again from: the same storage, so the same install.
  const config = { models: ['vad'], storagePrefix: uniqueName('tm'), ...extra }; // vad checked for before the first load
  const runtime = await startTelemetryRuntime(server, config);
  return { name: server.name, runtime, config, server };
}

/** Distinct frames (a chirp), so the active and an int8 candidate disagree a little. */
function frame(i: number): NamedTensors {
  return sileroChirpInputs(i, i % 3 === 0 ? 1 : 0.05);
}

async function runFrames(runtime: Runtime, from: number, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = from; i < from + count; i++)
    out.push((await runtime.run('vad', frame(i))).output!.data[0] as number);
  return out;
}

async function inferencesOf(name: string, version: string): Promise<number> {
  const report = (await commands.fleetReport(name, { model: 'vad' })) as FleetReport;
  return report.versions.find((v) => v.version === version)?.inferences ?? 0;
}

describe('telemetry from a real browser', () => {
  it("signs its batches with the install's key, kept non-extractable in IndexedDB across reloads", async () => {
    const { name, runtime, config, server } = await setUp();
    const { deviceId } = runtime;
    expect(deviceId).toMatch(DEVICE_ID_PATTERN); // the device id is the key's public half
    await runtime.load('vad');
    await runFrames(runtime, 0, 5);
    expect(await runtime.sendTelemetry()).toEqual({ sent: 1, discarded: 0 });
    expect(await inferencesOf(name, '1.0.0')).toBe(5); // verified and counted by the server

    const store = await ModelStore.open(`${config.storagePrefix}-models`);
    const saved = await store.getMeta('install-key');
    store.close();
    expect(saved?.deviceId).toBe(deviceId);
    expect(saved?.privateKey).toBeInstanceOf(CryptoKey);
    expect(saved?.privateKey.extractable).toBe(false);
    await expect(crypto.subtle.exportKey('pkcs8', saved!.privateKey)).rejects.toThrow();

    // The same batch without the signature is refused: the id alone is no credential.
    const unsigned = await fetch(`${server.url}/v1/telemetry`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(
        testBatch([testRecord({ inferences: 1000 })], {
          deviceId,
          windowStart: new Date(Date.now() - 1000).toISOString(),
          windowEnd: new Date().toISOString(),
        }),
      ),
    });
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as { error: { code: string } }).error.code).toBe('E_SIGNATURE');

    // A reload (a new worker on the same storage) keeps the install: same id, still accepted.
    await runtime.dispose();
    const reloaded = await startTelemetryRuntime(server, config);
    expect(reloaded.deviceId).toBe(deviceId);
    await reloaded.load('vad');
    await runFrames(reloaded, 0, 3);
    expect(await reloaded.sendTelemetry()).toEqual({ sent: 1, discarded: 0 });
    expect(await inferencesOf(name, '1.0.0')).toBe(8);
  }, 180_000); // two runtimes, each loading the model: slow on a loaded 2-core machine

  it('keeps batches while offline and delivers each exactly once, even when an acknowledgement is lost', async () => {
    const { name, runtime } = await setUp();
    await runtime.load('vad');

    await runFrames(runtime, 0, 12);
    await commands.setChaos(name, { offline: true });
    expect(await runtime.sendTelemetry()).toMatchObject({ sent: 0 });
    await runFrames(runtime, 12, 8);
    expect(await runtime.sendTelemetry()).toMatchObject({ sent: 0 }); // a second batch queued
    expect(await inferencesOf(name, '1.0.0')).toBe(0);

    // Back online, but the first delivery's acknowledgements are lost on the way back.
    await commands.setChaos(name, { offline: false, dropTelemetryAcks: true });
    expect(await runtime.sendTelemetry()).toMatchObject({ sent: 0 });
    // The server committed the oldest batch; the device saw a failure and backed off.
    expect(await inferencesOf(name, '1.0.0')).toBe(12);

    await commands.setChaos(name, { dropTelemetryAcks: false });
    const delivered = await runtime.sendTelemetry();
    expect(delivered.sent).toBe(2); // the retried batch is acknowledged as a duplicate
    expect(await runtime.sendTelemetry()).toMatchObject({ sent: 0 }); // nothing left queued
    expect(await inferencesOf(name, '1.0.0')).toBe(20); // counted once
  });

  it('runs a shadow candidate beside the active release; callers get the active outputs; agreement reaches the server', async () => {
    const { name, runtime } = await setUp({ shadowSampleRate: 1 });
    await runtime.load('vad');
    const reference = await runFrames(runtime, 0, 24);

    await commands.publishModel(name, {
      version: '1.1.0',
      source: 'silero-int8',
      rollout: { shareBps: 10_000, mode: 'shadow' },
    });
    const check = await runtime.checkForUpdates();
    expect(check.targets.vad).toMatchObject({ active: 'vad@1.0.0', shadow: 'vad@1.1.0' });
    expect((await runtime.status()).models[0]).toMatchObject({ loaded: 'vad@1.0.0', shadow: 'vad@1.1.0' });

    const withShadow = await runFrames(runtime, 0, 24);
    expect(withShadow).toEqual(reference); // bit for bit: the caller never sees the candidate
    await new Promise((resolve) => setTimeout(resolve, 500)); // shadow runs trail the answers
    await runtime.sendTelemetry();

    const report = (await commands.fleetReport(name, { model: 'vad' })) as FleetReport;
    const shadow = report.shadow.find((s) => s.candidate === '1.1.0');
    expect(shadow).toMatchObject({ against: '1.0.0', compared: 24 });
    expect(shadow!.agreement).toBeGreaterThan(0.8);
    expect(report.versions.find((v) => v.version === '1.0.0')?.inferences).toBe(48);
  });
});
