// Failures that heal, in real Chromium and Firefox ESR against a real update server: a release
// that could not start because onnxruntime-web's files were not where the app said is retried
// with backoff and runs once the app serves them; a release whose stored bytes no longer match
// their signed hash stays refused until runtime.reset(model), and is then repaired by fetching
// only the bad chunk; a download the network cut off, with the server then unreachable, resumes
// at the runtime's next check once the server is back.
import { openDB } from 'idb';
import { afterEach, describe, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import {
  recordEvents,
  serverWithVad,
  speechProbability,
  startVadRuntime,
  stopAll,
  uniqueName,
} from '../test-fixtures/runtime-harness.ts';
import type { Runtime } from './client.ts';
import type { InstalledRelease } from './store/model-store.ts';
import { rotStoredChunk } from './store/test-releases.ts';

/** A folder the test server does not have: every ORT file under it answers 404. */
const MISSING_WASM_PATHS = new URL('/no-such-ort-folder/', location.origin).href;

afterEach(stopAll);

async function refusedOf(runtime: Runtime) {
  return (await runtime.status()).models.find((m) => m.name === 'vad')?.refused ?? [];
}

describe('failed activations', () => {
  it('retries a release whose engine could not start with backoff, and at once with the right wasmPaths', async () => {
    const server = await serverWithVad('heal');
    const storage = uniqueName('heal');
    const broken = await startVadRuntime(server, storage, {
      wasmPaths: MISSING_WASM_PATHS,
      activationRetry: { initialMs: 2_000, maxMs: 60_000 },
    });
    await expect(broken.load('vad')).rejects.toMatchObject({ code: 'E_HEALTH_CHECK' });
    const [first] = await refusedOf(broken);
    expect(first).toMatchObject({
      release: 'vad@1.0.0',
      cause: 'environment',
      phase: 'engine',
      attempts: 1,
      refused: true,
    });
    expect(Date.parse(first!.retryAt!) - Date.parse(first!.failedAt)).toBe(2_000);

    // Within the backoff a load does not try again: it says why and when it will.
    await expect(broken.load('vad')).rejects.toMatchObject({
      code: 'E_HEALTH_CHECK',
      message: expect.stringMatching(/environment: .*retried after/),
    });
    expect((await refusedOf(broken))[0]).toMatchObject({ attempts: 1 });

    // Once the backoff is over, the next load tries again; the wait doubles.
    await new Promise((resolve) => setTimeout(resolve, Date.parse(first!.retryAt!) - Date.now() + 50));
    expect((await refusedOf(broken))[0]).toMatchObject({ refused: false });
    await expect(broken.load('vad')).rejects.toMatchObject({ code: 'E_HEALTH_CHECK' });
    const [second] = await refusedOf(broken);
    expect(second).toMatchObject({ attempts: 2, refused: true });
    expect(Date.parse(second!.retryAt!) - Date.parse(second!.failedAt)).toBe(4_000);
    await broken.dispose();

    // The same profile and storage with ORT's files where they belong: no waiting for the backoff.
    const fixed = await startVadRuntime(server, storage, { activationRetry: { initialMs: 3_600_000 } });
    expect(await fixed.load('vad').then((m) => m.status())).toMatchObject({
      active: 'vad@1.0.0',
      loaded: 'vad@1.0.0',
      refused: [],
    });
    await speechProbability(fixed);
  });

  it('keeps a release whose stored bytes fail their hash refused until reset, then fetches only the bad chunk', async () => {
    const server = await serverWithVad('heal');
    const storage = uniqueName('heal');
    const downloader = await startVadRuntime(server, storage);
    expect((await downloader.checkForUpdates()).downloaded).toEqual(['vad@1.0.0']);
    await downloader.dispose();

    // Storage corrupted after the verified download (a bad disk, or tampering).
    const db = await openDB(`${storage}-models`);
    const installed = (await db.get('releases', 'vad@1.0.0')) as InstalledRelease;
    const victim = installed.signed.signed.files[0]!.chunks[1]!.sha256;
    db.close();
    await rotStoredChunk(`${storage}-models`, victim, 10);

    const runtime = await startVadRuntime(server, storage);
    await expect(runtime.load('vad')).rejects.toMatchObject({ code: 'E_HASH' });
    expect(await refusedOf(runtime)).toEqual([
      expect.objectContaining({
        release: 'vad@1.0.0',
        code: 'E_HASH',
        cause: 'model',
        phase: 'read',
        refused: true,
        retryAt: null,
        message: expect.stringMatching(/no longer matches its signed SHA-256/),
      }),
    ]);
    // Not retried: a check stages nothing, a load says so.
    expect((await runtime.checkForUpdates()).downloaded).toEqual([]);
    await expect(runtime.load('vad')).rejects.toMatchObject({
      code: 'E_HASH',
      message: expect.stringMatching(/not retried until a newer manifest offers it or runtime.reset\(\)/),
    });
    expect((await runtime.status()).models[0]).toMatchObject({ active: null, pending: null });

    // reset(model) forgets the failure; the next load downloads just the chunk that was dropped.
    expect(await runtime.reset('vad')).toMatchObject({ refused: [] });
    await commands.proxyLog(server.name, { reset: true });
    expect(await runtime.load('vad').then((m) => m.status())).toMatchObject({
      active: 'vad@1.0.0',
      loaded: 'vad@1.0.0',
      refused: [],
    });
    const fetched = (await commands.proxyLog(server.name))
      .filter((e) => e.path.startsWith('/v1/chunks/') && e.status === 200)
      .map((e) => e.path.split('/').pop());
    expect(fetched).toEqual([victim]);
    await speechProbability(runtime);
  });

  it('resumes a download the network cut off at the next check once the unreachable server is back, in the same profile', async () => {
    const server = await serverWithVad('heal');
    const published = server.vad;
    const all = new Set(published.chunks.map((c) => c.sha256));
    const storage = uniqueName('heal');
    const chunksServed = async () =>
      (await commands.proxyLog(server.name, { reset: true }))
        .filter((e) => e.path.startsWith('/v1/chunks/') && e.status === 200)
        .map((e) => e.path.split('/').pop()!);

    // First visit: two chunk responses go through (the lanes in flight with them too), then every
    // connection drops mid-body.
    await commands.setChaos(server.name, { cutChunksAfter: 2 });
    const first = await startVadRuntime(server, storage);
    await expect(first.load('vad')).rejects.toMatchObject({
      code: 'E_NETWORK',
      message: expect.stringMatching(/vad@1\.0\.0 could not be downloaded .*the next check resumes it/),
    });
    const stored = await chunksServed();
    expect(stored.length).toBeGreaterThanOrEqual(2);
    expect(stored.length).toBeLessThan(all.size);
    // The network's fault, not the release's: nothing is refused, so nothing waits for a backoff.
    expect(await refusedOf(first)).toEqual([]);
    await first.dispose();

    // The server goes away: a reload in the same profile cannot reach it and says so.
    await commands.stopEdgeshipServer(server.name, { keepData: true });
    await commands.setChaos(server.name, { cutChunksAfter: null, offline: true });
    const reloaded = await startVadRuntime(server, storage, { checkIntervalMs: 2_000 });
    const events = recordEvents(reloaded);
    await expect(reloaded.load('vad')).rejects.toMatchObject({ code: 'E_NETWORK' });
    expect((await reloaded.status()).lastCheck).toMatchObject({ ok: false, error: { code: 'E_NETWORK' } });
    expect(await chunksServed()).toEqual([]);

    // Back: the runtime's own next check (checkIntervalMs) resumes the download; the app does nothing.
    await commands.restartEdgeshipServer(server.name);
    await commands.setChaos(server.name, { offline: false });
    await expect
      .poll(() => events.find((e) => e.type === 'update-downloaded'), { timeout: 60_000 })
      .toMatchObject({ release: 'vad@1.0.0', download: { chunksReused: stored.length } });
    const resumed = await chunksServed();
    expect(resumed.filter((sha) => stored.includes(sha))).toEqual([]); // verified chunks were kept
    expect(new Set([...stored, ...resumed])).toEqual(all);
    expect(await reloaded.load('vad').then((m) => m.status())).toMatchObject({
      active: 'vad@1.0.0',
      loaded: 'vad@1.0.0',
      refused: [],
    });
    await speechProbability(reloaded);
  }, 150_000); // two runtimes and a first model load on a busy 2-core machine
});
