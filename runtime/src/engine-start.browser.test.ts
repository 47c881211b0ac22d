// A bounded engine start in a real browser: a start that cannot complete (onnxruntime-web's WASM
// files on an origin that never answers, as a stuck WASM start in Firefox's worker behaves) fails
// with a typed E_TIMEOUT after one fresh worker, within its bound, and nothing is held against
// the release; a start that is stuck once runs in the worker that replaced the stuck one.
import { afterEach, describe, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import {
  serverWithVad,
  sileroToneInputs,
  startRuntime,
  stopAll,
  type TestServer,
  uniqueName,
} from '../test-fixtures/runtime-harness.ts';
import { EngineStartTimeoutError, engineStartLimitMs } from './engine-start.ts';
import type { RuntimeEvent } from './worker/config.ts';

const assets: string[] = [];

afterEach(async () => {
  await stopAll();
  for (const url of assets.splice(0)) await commands.stopStallingAssets(url);
});

async function stallingAssets(hold: number, releaseAfterMs?: number): Promise<string> {
  const url = await commands.startStallingAssets(hold, releaseAfterMs);
  assets.push(url);
  return url;
}

/**
 * A store where vad@1.0.0 is installed and its backend chosen (a first load with ORT's files
 * served as usual, autotune's choice remembered): later starts go straight to the engine, with no
 * autotune trials, which would
 * take the held requests in their nested workers and bound themselves (60 s each).
 */
async function primedStore(server: TestServer): Promise<string> {
  const storagePrefix = uniqueName('primed');
  const first = await startRuntime(server, { storagePrefix, backend: 'auto' });
  await first.load('vad');
  await first.dispose();
  return storagePrefix;
}

/** How `runtime`'s load of vad fails (null: it loaded), the events on the way, and how long it took. */
async function failedLoad(
  runtime: Awaited<ReturnType<typeof startRuntime>>,
): Promise<{ error: unknown; events: RuntimeEvent[]; tookMs: number }> {
  const events: RuntimeEvent[] = [];
  runtime.on('*', (event) => events.push(event));
  const started = performance.now();
  const error = await runtime.load('vad').then(
    () => null,
    (e: unknown) => e,
  );
  return { error, events, tookMs: performance.now() - started };
}

describe('engine start', () => {
  it('a start that cannot complete fails with E_TIMEOUT (phase engine-start) after one worker restart, and records nothing', async () => {
    const server = await serverWithVad('stuck');
    const wasmPaths = await stallingAssets(1_000);
    const baseMs = 3_000;
    const storagePrefix = await primedStore(server);
    const runtime = await startRuntime(server, {
      wasmPaths,
      engineStartTimeoutMs: baseMs,
      storagePrefix,
      backend: 'auto',
    });
    const { error, events, tookMs } = await failedLoad(runtime);
    expect(error).toBeInstanceOf(EngineStartTimeoutError);
    const timeout = error as EngineStartTimeoutError;
    expect(timeout.code).toBe('E_TIMEOUT');
    expect(timeout.phase).toBe('engine-start');
    expect(timeout.model).toBe('vad');
    expect(timeout.restarted).toBe(true);
    // Sized by the release's bytes (Silero is ~2 MiB): more than the base, and what the event said.
    const starting = events.find((e) => e.type === 'engine-starting');
    expect(starting?.type === 'engine-starting' && starting.bytes).toBeGreaterThan(1_000_000);
    const bytes = starting?.type === 'engine-starting' ? starting.bytes : 0;
    const firstMs = engineStartLimitMs(bytes, { baseMs, msPerMiB: 1_000 });
    expect(firstMs).toBeGreaterThan(baseMs);
    // The fresh worker had four times the bound (a start that is only slow finishes there).
    expect(timeout.timeoutMs).toBe(engineStartLimitMs(bytes, { baseMs, msPerMiB: 1_000 }, true));
    expect(timeout.timeoutMs).toBeGreaterThan(3.99 * firstMs);
    // Two bounds and two worker starts: not a hang.
    expect(tookMs).toBeGreaterThan(firstMs + timeout.timeoutMs);
    expect(tookMs).toBeLessThan(firstMs + timeout.timeoutMs + 60_000);
    const restarted = events.filter((e) => e.type === 'worker-restarted');
    expect(restarted).toHaveLength(1);
    expect(restarted[0]).toMatchObject({ timeoutMs: firstMs });
    // Each worker's start waited on ORT's files: Chromium asks again from the fresh worker, Firefox
    // keeps that request queued behind the first one, still open (either way, it cannot complete).
    expect((await commands.stallingAssetsLog(wasmPaths)).filter((r) => r.held).length).toBeGreaterThanOrEqual(
      1,
    );
    // Nothing is held against the release: the cause was the engine start, not the model.
    const status = await runtime.status();
    const vad = status.models.find((m) => m.name === 'vad');
    expect(vad?.refused).toEqual([]);
    expect(vad?.cached).toContain(timeout.release);
  });

  it('a start stuck once runs in the fresh worker that replaced the stuck one', async () => {
    const server = await serverWithVad('stuck-once');
    // The held request is cut once its worker is gone (past the 17 s bound; the fresh worker has
    // four times that): Firefox queues the fresh worker's request for the same file behind it.
    const wasmPaths = await stallingAssets(1, 20_000);
    const storagePrefix = await primedStore(server);
    const runtime = await startRuntime(server, {
      wasmPaths,
      engineStartTimeoutMs: 15_000,
      storagePrefix,
      backend: 'auto',
    });
    const events: RuntimeEvent[] = [];
    runtime.on('*', (event) => events.push(event));
    const vad = await runtime.load('vad');
    const outputs = await vad.run(sileroToneInputs());
    expect(Number.isFinite(outputs.output?.data[0] as number)).toBe(true);
    expect(events.filter((e) => e.type === 'worker-restarted')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'engine-started' && e.ok)).toHaveLength(1);
    expect((await commands.stallingAssetsLog(wasmPaths)).filter((r) => r.held)).toHaveLength(1);
    expect((await vad.status()).refused).toEqual([]);
  });

  it('an autotune trial that cannot complete costs the worker within the bound, not the trial its own 60 s', async () => {
    // No primed store: the first load times each candidate in a nested worker, whose request for
    // ORT's files is held. In Firefox the runtime worker itself was seen to stop answering during
    // such a trial, so the page bounds each trial as it bounds the other steps.
    const server = await serverWithVad('stuck-probe');
    const wasmPaths = await stallingAssets(1_000);
    const baseMs = 3_000;
    const runtime = await startRuntime(server, { wasmPaths, engineStartTimeoutMs: baseMs, backend: 'auto' });
    const { error, events, tookMs } = await failedLoad(runtime);
    expect(error).toBeInstanceOf(EngineStartTimeoutError);
    expect(error).toMatchObject({ code: 'E_TIMEOUT', phase: 'engine-start', restarted: true });
    // Both workers were lost in a trial, each within its bound: far less than one trial's 60 s.
    const steps = events.flatMap((e) => (e.type === 'engine-starting' ? [e.step] : []));
    expect(steps.filter((s) => s === 'probe').length).toBeGreaterThanOrEqual(2);
    expect(steps).not.toContain('engine');
    expect(events.filter((e) => e.type === 'worker-restarted')).toHaveLength(1);
    // The first worker's bound, then four times it in the fresh one.
    expect(tookMs).toBeLessThan(1.25 * (error as EngineStartTimeoutError).timeoutMs + 40_000);
    const vad = (await runtime.status()).models.find((m) => m.name === 'vad');
    expect(vad?.refused).toEqual([]);
  });
});
