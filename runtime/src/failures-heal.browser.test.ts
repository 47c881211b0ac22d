// Failures that heal, in a real Chromium against a real update server: a release that could not
// start because onnxruntime-web's files were not where the app said is retried with backoff and
// runs once the app serves them; a release whose stored bytes no longer match their signed hash
// stays refused until runtime.reset(model), and is then repaired by fetching only the bad chunk.
import { openDB } from 'idb';
import { afterEach, describe, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import { createRuntime, type Runtime } from './client.ts';
import type { InstalledRelease } from './store/model-store.ts';

const WASM_PATHS = new URL('/node_modules/onnxruntime-web/dist/', location.origin).href;
/** A folder the test server does not have: every ORT file under it answers 404. */
const MISSING_WASM_PATHS = new URL('/no-such-ort-folder/', location.origin).href;

const open: Runtime[] = [];
const servers: string[] = [];
let serial = 0;

afterEach(async () => {
  for (const runtime of open.splice(0)) await runtime.dispose();
  for (const name of servers.splice(0)) await commands.stopEdgeshipServer(name);
});

async function serverWithVad() {
  const name = `heal-${Date.now()}-${serial++}`;
  servers.push(name);
  const server = await commands.startEdgeshipServer(name);
  await commands.publishModel(name, { version: '1.0.0', source: 'silero', promote: true });
  return server;
}

async function runtimeFor(server: { url: string; trustedRoot: unknown }, storagePrefix: string, extra = {}) {
  const runtime = await createRuntime({
    server: server.url,
    app: 'demo-app',
    channel: 'stable',
    trustedRoot: server.trustedRoot as never,
    wasmPaths: WASM_PATHS,
    backend: 'wasm',
    telemetry: false,
    checkOnLoad: false,
    models: ['vad'], // checked for before the first load
    storagePrefix,
    ...extra,
  });
  open.push(runtime);
  return runtime;
}

async function speechProbability(runtime: Runtime): Promise<number> {
  const frame = new Float32Array(512).map((_, i) => 0.3 * Math.sin((2 * Math.PI * 440 * i) / 16_000));
  const outputs = await runtime.run('vad', {
    input: { data: frame, dims: [1, 512] },
    state: { data: new Float32Array(256), dims: [2, 1, 128] },
    sr: { data: new BigInt64Array([16_000n]), dims: [] },
  });
  return outputs.output!.data[0] as number;
}

async function refusedOf(runtime: Runtime) {
  return (await runtime.status()).models.find((m) => m.name === 'vad')?.refused ?? [];
}

describe('failed activations', () => {
  it('retries a release whose engine could not start with backoff, and at once with the right wasmPaths', async () => {
    const server = await serverWithVad();
    const storage = `heal${Date.now()}-${serial++}`;
    const broken = await runtimeFor(server, storage, {
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
    const fixed = await runtimeFor(server, storage, { activationRetry: { initialMs: 3_600_000 } });
    expect(await fixed.load('vad').then((m) => m.status())).toMatchObject({
      active: 'vad@1.0.0',
      loaded: 'vad@1.0.0',
      refused: [],
    });
    const p = await speechProbability(fixed);
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThanOrEqual(1);
  });

  it('keeps a release whose stored bytes fail their hash refused until reset, then fetches only the bad chunk', async () => {
    const server = await serverWithVad();
    const storage = `heal${Date.now()}-${serial++}`;
    const downloader = await runtimeFor(server, storage);
    expect((await downloader.checkForUpdates()).downloaded).toEqual(['vad@1.0.0']);
    await downloader.dispose();

    // Storage corrupted after the verified download (a bad disk, or tampering).
    const db = await openDB(`${storage}-models`);
    const installed = (await db.get('releases', 'vad@1.0.0')) as InstalledRelease;
    const victim = installed.signed.signed.files[0]!.chunks[1]!.sha256;
    const chunk = (await db.get('chunks', victim)) as { size: number; bytes: Uint8Array };
    chunk.bytes[10] = chunk.bytes[10]! ^ 0xff;
    await db.put('chunks', chunk, victim);
    db.close();

    const runtime = await runtimeFor(server, storage);
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
    expect(await speechProbability(runtime)).toBeGreaterThanOrEqual(0);
  });
});
