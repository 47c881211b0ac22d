// The runtime end to end in real Chromium and Firefox ESR: a real worker, real IndexedDB, real
// onnxruntime-web running the real Silero VAD, against a real update server behind a chaos proxy
// (test/support).
import { InputError } from '@edgeship/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import {
  recordEvents,
  serverWithVad,
  sileroToneInputs as sileroInputs,
  speechProbability,
  startVadRuntime,
  stopAll,
  uniqueName,
} from '../test-fixtures/runtime-harness.ts';

afterEach(stopAll);

function prefix() {
  return uniqueName('t');
}

async function expectCode(promise: Promise<unknown>, code: string) {
  await expect(promise).rejects.toMatchObject({ code });
}

describe('runtime in a real browser against a real update server', () => {
  it('never downloads a model the channel offers but the app does not use', async () => {
    const server = await serverWithVad();
    const vad = server.vad;
    const other = await commands.publishModel(server.name, {
      model: 'other',
      version: '1.0.0',
      source: 'garbage',
      promote: true,
    });
    const otherChunks = new Set(other.chunks.map((c) => c.sha256));
    const chunkRequests = async () =>
      (await commands.proxyLog(server.name, { reset: true }))
        .filter((e) => e.path.startsWith('/v1/chunks/'))
        .map((e) => e.path.split('/').pop()!);

    // The app loads VAD only (startVadRuntime declares models: ['vad']).
    const app = await startVadRuntime(server, prefix());
    await app.load('vad');
    const check = await app.checkForUpdates();
    expect(check.downloaded).toEqual([]);
    const fetched = await chunkRequests();
    expect(fetched.length).toBeGreaterThan(0);
    expect(new Set(fetched)).toEqual(new Set(vad.chunks.map((c) => c.sha256)));
    expect(fetched.filter((sha) => otherChunks.has(sha))).toEqual([]);
    expect((await app.status()).models.map((m) => m.name)).toEqual(['vad']);

    // Declared, it is downloaded before it is ever loaded.
    const declaring = await startVadRuntime(server, prefix(), { models: ['vad', 'other'] });
    expect((await declaring.checkForUpdates()).downloaded.sort()).toEqual(['other@1.0.0', 'vad@1.0.0']);
    expect((await chunkRequests()).some((sha) => otherChunks.has(sha))).toBe(true);
  });

  it('downloads, verifies, stores and runs on first load; runs again from the cache with the server gone', async () => {
    const server = await serverWithVad();
    const published = server.vad;
    const storage = prefix();

    const first = await startVadRuntime(server, storage);
    const status = await first.load('vad').then((m) => m.status());
    expect(status).toMatchObject({ active: 'vad@1.0.0', loaded: 'vad@1.0.0', lastKnownGood: 'vad@1.0.0' });
    expect(status.backend?.chosen.backend).toBe('wasm');
    expect(typeof first.storagePersisted).toBe('boolean'); // asked; the browser decides (Firefox: granted by the test profile's pref)
    const online = await speechProbability(first);
    // Bad input is refused in the worker with a typed error that survives the trip back.
    const wrong = sileroInputs();
    wrong.input = { data: new Float32Array(100), dims: [1, 100] };
    const refused = await first.run('vad', wrong).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(InputError);
    expect(refused).toMatchObject({ code: 'E_INPUT' });
    const log = await commands.proxyLog(server.name, { reset: true });
    const fetchedChunks = log.filter((e) => e.path.startsWith('/v1/chunks/') && e.status === 200);
    expect(new Set(fetchedChunks.map((e) => e.path.split('/').pop())).size).toBe(
      new Set(published.chunks.map((c) => c.sha256)).size,
    );
    await first.dispose();

    await commands.stopEdgeshipServer(server.name, { keepData: true });
    await commands.setChaos(server.name, { offline: true });
    const offline = await startVadRuntime(server, storage, { checkOnLoad: true });
    expect(await offline.load('vad').then((m) => m.status())).toMatchObject({
      active: 'vad@1.0.0',
      loaded: 'vad@1.0.0',
    });
    expect(await speechProbability(offline)).toBeCloseTo(online, 6);
    await expectCode(offline.checkForUpdates(), 'E_NETWORK');
    expect((await offline.status()).lastCheck).toMatchObject({ ok: false, error: { code: 'E_NETWORK' } });
    expect(await commands.proxyLog(server.name)).toEqual([]); // the offline proxy served nothing
  });

  it('refuses a tampered chunk, a tampered, an expired and a replayed manifest, and keeps the active model', async () => {
    const server = await serverWithVad();
    const runtime = await startVadRuntime(server, prefix());
    await runtime.load('vad');
    const before = await speechProbability(runtime);

    // 1.1.0 differs from 1.0.0 only in its last chunk: tamper with exactly that one.
    const next = await commands.publishModel(server.name, {
      version: '1.1.0',
      source: { sileroDocString: 'release 1.1.0' },
      promote: true,
    });
    const lastChunk = next.chunks.at(-1)!.sha256;
    await commands.setChaos(server.name, { tamperChunk: lastChunk });
    const tampered = await runtime.checkForUpdates();
    expect(tampered.failures).toEqual([expect.objectContaining({ release: 'vad@1.1.0', code: 'E_HASH' })]);
    expect(await runtime.status().then((s) => s.models[0])).toMatchObject({
      active: 'vad@1.0.0',
      pending: null,
    });
    expect(await speechProbability(runtime)).toBeCloseTo(before, 6);

    // Each forged manifest is refused with its own code; the model keeps running on 1.0.0.
    await commands.setChaos(server.name, { tamperChunk: null });
    const accepted = await runtime.checkForUpdates(); // now the genuine 1.1.0 downloads
    expect(accepted.downloaded).toEqual(['vad@1.1.0']);
    const current = accepted.manifestVersion!;
    for (const [kind, code] of [
      ['tampered', 'E_SIGNATURE'],
      ['expired', 'E_EXPIRED'],
      [{ replay: current - 1 }, 'E_ROLLBACK'],
    ] as const) {
      await commands.setChaos(server.name, { manifestBody: await commands.forgeManifest(server.name, kind) });
      await expectCode(runtime.checkForUpdates(), code);
      expect((await runtime.status()).lastCheck?.error?.code).toBe(code);
      expect(await speechProbability(runtime)).toBeCloseTo(before, 6);
    }
    expect((await runtime.status()).models[0]).toMatchObject({ active: 'vad@1.0.0', pending: 'vad@1.1.0' });
  });

  it('resumes a download cut mid-transfer without fetching verified chunks again', async () => {
    const server = await serverWithVad();
    const published = server.vad;
    const unique = new Set(published.chunks.map((c) => c.sha256));
    expect(unique.size).toBeGreaterThan(3);
    const runtime = await startVadRuntime(server, prefix());

    // Two chunk responses go through, then every connection drops mid-body.
    await commands.setChaos(server.name, { cutChunksAfter: 2 });
    const cut = await runtime.checkForUpdates();
    expect(cut.failures).toEqual([expect.objectContaining({ release: 'vad@1.0.0', code: 'E_NETWORK' })]);
    const firstTry = await commands.proxyLog(server.name, { reset: true });
    const stored = new Set(
      firstTry
        .filter((e) => e.path.startsWith('/v1/chunks/') && e.status === 200)
        .map((e) => e.path.split('/').pop()),
    );
    expect(stored.size).toBeGreaterThanOrEqual(2);
    expect(firstTry.some((e) => e.status === 0 && e.bytes > 0)).toBe(true); // a body really was cut

    await commands.setChaos(server.name, { cutChunksAfter: null });
    const resumed = await runtime.checkForUpdates();
    expect(resumed.downloaded).toEqual(['vad@1.0.0']);
    const secondTry = (await commands.proxyLog(server.name)).filter((e) => e.path.startsWith('/v1/chunks/'));
    const refetched = secondTry.map((e) => e.path.split('/').pop()!);
    expect(refetched.filter((sha) => stored.has(sha))).toEqual([]);
    expect(new Set([...stored, ...refetched])).toEqual(unique);
    expect(await runtime.load('vad').then((m) => m.status())).toMatchObject({ active: 'vad@1.0.0' });
    await speechProbability(runtime);
  });

  it('fetches only the new chunks of a release that shares chunks with the installed one', async () => {
    const server = await serverWithVad();
    const v1 = server.vad;
    const runtime = await startVadRuntime(server, prefix());
    await runtime.load('vad');
    await commands.proxyLog(server.name, { reset: true });

    const v2 = await commands.publishModel(server.name, {
      version: '1.1.0',
      source: { sileroDocString: 'same weights, new model card' },
      promote: true,
    });
    const have = new Set(v1.chunks.map((c) => c.sha256));
    const newChunks = v2.chunks.filter((c) => !have.has(c.sha256));
    const newBytes = newChunks.reduce((n, c) => n + c.size, 0);
    expect(newChunks.length).toBeGreaterThan(0);
    expect(newBytes).toBeLessThan(v2.size / 2);

    const events = recordEvents(runtime);
    const result = await runtime.checkForUpdates();
    expect(result.downloaded).toEqual(['vad@1.1.0']);
    const chunkBytes = (await commands.proxyLog(server.name))
      .filter((e) => e.path.startsWith('/v1/chunks/'))
      .reduce((n, e) => n + e.bytes, 0);
    expect(chunkBytes).toBe(newBytes);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'update-downloaded', release: 'vad@1.1.0' }),
    );

    // Next-load activation: the running engine stays on 1.0.0 until load() is called again.
    expect((await runtime.status()).models[0]).toMatchObject({ active: 'vad@1.0.0', pending: 'vad@1.1.0' });
    expect(await runtime.load('vad').then((m) => m.status())).toMatchObject({
      active: 'vad@1.1.0',
      pending: null,
      loaded: 'vad@1.1.0',
    });
    expect(events).toContainEqual({
      type: 'update-activated',
      model: 'vad',
      release: 'vad@1.1.0',
      previous: 'vad@1.0.0',
    });
  });

  it('rolls a release that fails its health check back to the last known good one', async () => {
    const server = await serverWithVad();
    const runtime = await startVadRuntime(server, prefix(), { activation: 'immediate' });
    await runtime.load('vad');
    const before = await speechProbability(runtime);
    const events = recordEvents(runtime);

    // Correctly signed and hashed, but not a model: it fails to load.
    await commands.publishModel(server.name, { version: '2.0.0', source: 'garbage', promote: true });
    await runtime.checkForUpdates();
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'rolled-back', from: 'vad@2.0.0', code: 'E_HEALTH_CHECK' }),
    );
    expect((await runtime.status()).models[0]).toMatchObject({
      active: 'vad@1.0.0',
      lastKnownGood: 'vad@1.0.0',
      loaded: 'vad@1.0.0',
      pending: null,
    });
    expect(await speechProbability(runtime)).toBeCloseTo(before, 6);

    // Remembered as failed: the next check does not download or try it again.
    const again = await runtime.checkForUpdates();
    expect(again.downloaded).toEqual([]);
    expect(await runtime.load('vad').then((m) => m.status())).toMatchObject({ active: 'vad@1.0.0' });
  });

  it('follows its rollout bucket: a 100% canary is installed, and halting it brings the control back', async () => {
    const server = await serverWithVad();
    const canary = await commands.publishModel(server.name, {
      version: '1.1.0',
      source: { sileroDocString: 'canary' },
      rollout: { shareBps: 10_000 },
    });
    const runtime = await startVadRuntime(server, prefix());
    expect(await runtime.load('vad').then((m) => m.status())).toMatchObject({ active: 'vad@1.1.0' });

    await commands.haltRollout(server.name, canary.rolloutId!);
    const check = await runtime.checkForUpdates();
    expect(check.targets.vad).toMatchObject({ active: 'vad@1.0.0', inRollout: false });
    // The first check only fetched the canary; the control now downloads (sharing most chunks).
    expect(check.downloaded).toEqual(['vad@1.0.0']);
    expect(await runtime.load('vad').then((m) => m.status())).toMatchObject({
      active: 'vad@1.0.0',
      loaded: 'vad@1.0.0',
    });
  });
});
