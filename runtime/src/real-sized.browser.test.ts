// Real-sized releases in Chromium and Firefox ESR (issue 16): a ~100 MB model generated at test time with its
// weights in ONNX external data, storage corrupted after download, and an origin quota too small
// for a release. Real update server, real IndexedDB, real onnxruntime-web, real Chromium quota.
import { releaseId, type SignedRelease } from '@edgeship/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import { BIG_MODEL_OUTPUTS, bigModelInput, EXTERNAL_DATA_PATH } from '../../test/support/big-model-input.ts';
import {
  startRuntime,
  startServer,
  stopAll,
  uniqueName,
  WASM_PATHS,
} from '../test-fixtures/runtime-harness.ts';
import { downloadRelease } from './download/fetcher.ts';
import { ModelStore } from './store/model-store.ts';
import { rotStoredChunk } from './store/test-releases.ts';
import type { RuntimeConfig, RuntimeEvent } from './worker/config.ts';
import { openEngine, readReleaseBytes } from './worker/open-engine.ts';

const cleanups: Array<() => Promise<void> | void> = [];
let serial = 0;

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await stopAll();
});

async function openStore(): Promise<{ store: ModelStore; name: string }> {
  const name = uniqueName('big-store');
  const store = await ModelStore.open(name);
  cleanups.push(async () => {
    store.close();
    await new Promise((resolve) => {
      const request = indexedDB.deleteDatabase(name);
      request.onsuccess = request.onerror = request.onblocked = resolve;
    });
  });
  return { store, name };
}

describe('a ~100 MB release in ONNX external data', () => {
  it('downloads, verifies a few chunks at a time, runs and matches onnxruntime-node', async () => {
    const server = await startServer('big');
    const width = 5000; // 4·5000² bytes: a 100 MB first weight
    const signed: SignedRelease = await commands.publishBigModel(server.name, {
      model: 'big',
      version: '1.0.0',
      width,
      external: true,
    });
    const data = signed.signed.files.find((f) => f.path === EXTERNAL_DATA_PATH)!;
    expect(data.size).toBeGreaterThan(100_000_000);
    const largestChunk = Math.max(...data.chunks.map((c) => c.size));

    const { store } = await openStore();
    const result = await downloadRelease(store, signed, { server: server.url });
    expect(result.bytesFetched).toBe(signed.signed.files.reduce((n, f) => n + f.size, 0));
    // The whole-file hash took the chunks in file order as they arrived, never an assembled
    // file: at most the download's window (4 lanes × 4 chunks) was held at once, not 100 MB.
    expect(result.verifyPeakBytes).toBeGreaterThan(0);
    expect(result.verifyPeakBytes).toBeLessThanOrEqual(16 * largestChunk);
    // Lanes never ran past that window, so no chunk had to be re-read from storage to finish it.
    expect(result.chunksReadBack).toBe(0);
    expect(result.handedOver).toBe(false);

    const id = releaseId(signed.signed);
    const bytes = await readReleaseBytes(store, id, signed.signed);
    expect(bytes.externalData.map((f) => f.path)).toEqual([EXTERNAL_DATA_PATH]);
    const config = { wasmPaths: WASM_PATHS, backend: 'wasm' } as RuntimeConfig;
    const { engine } = await openEngine(store, id, signed.signed, bytes, config);
    cleanups.push(() => engine.dispose());
    // The holder let go of the bytes once ORT had its copy: nothing of ours outlives the session.
    expect(bytes).toEqual({ model: null, externalData: [], weights: null });

    const outputs = await engine.run({ input: { data: bigModelInput(width), dims: [1, width] } });
    const browser = Array.from(outputs.output!.data as Float32Array);
    const node = await commands.runBigModelInNode({ width, external: true });
    expect(browser).toHaveLength(BIG_MODEL_OUTPUTS);
    for (const [i, v] of node.entries()) expect(browser[i]).toBeCloseTo(v, 4);
  }, 240_000); // 100 MB generated, uploaded and downloaded on a shared 2-core machine
});

describe('an external-data release through the runtime', () => {
  it('is timed in probe workers with its external data, activated and run in the worker', async () => {
    const server = await startServer('big');
    const width = 300;
    await commands.publishBigModel(server.name, {
      model: 'ext',
      version: '1.0.0',
      width,
      external: true,
      promote: true,
    });
    const runtime = await startRuntime(server, {
      backend: 'auto', // autotune: each candidate loads the model in a nested probe worker
      storagePrefix: uniqueName('ext-rt'),
    });
    const status = await runtime.load('ext').then((handle) => handle.status());
    expect(status).toMatchObject({ active: 'ext@1.0.0', loaded: 'ext@1.0.0' });
    const trials = status.backend?.trials ?? [];
    expect(trials.some((t) => typeof t.medianMs === 'number')).toBe(true);
    const outputs = await runtime.run('ext', { input: { data: bigModelInput(width), dims: [1, width] } });
    const node = await commands.runBigModelInNode({ width, external: true });
    const browser = Array.from(outputs.output!.data as Float32Array);
    for (const [i, v] of node.entries()) expect(browser[i]).toBeCloseTo(v, 4);
  }, 180_000);
});

describe('storage corrupted after download', () => {
  it('refuses the release at load with E_HASH and runs the last known good one', async () => {
    const server = await startServer('big');
    await commands.publishModel(server.name, { version: '1.0.0', source: 'silero', promote: true });
    const storagePrefix = uniqueName('big-rt');
    const runtimeOf = () => startRuntime(server, { storagePrefix });
    const first = await runtimeOf();
    await first.load('vad');
    const next = await commands.publishModel(server.name, {
      version: '1.1.0',
      source: { sileroDocString: 'release 1.1.0' },
      promote: true,
    });
    expect((await first.checkForUpdates()).downloaded).toEqual(['vad@1.1.0']);
    await first.dispose();

    // Rot one byte of the chunk only 1.1.0 has, behind the runtime's back.
    const sha = next.chunks.at(-1)!.sha256;
    await rotStoredChunk(`${storagePrefix}-models`, sha);

    const second = await runtimeOf();
    const events: RuntimeEvent[] = [];
    second.on('*', (event) => events.push(event));
    const status = await second.load('vad').then((handle) => handle.status());
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'rolled-back', from: 'vad@1.1.0', to: 'vad@1.0.0', code: 'E_HASH' }),
    );
    expect(status).toMatchObject({ active: 'vad@1.0.0', loaded: 'vad@1.0.0' });
    const frame = new Float32Array(512);
    const outputs = await second.run('vad', {
      input: { data: frame, dims: [1, 512] },
      state: { data: new Float32Array(256), dims: [2, 1, 128] },
      sr: { data: new BigInt64Array([16_000n]), dims: [] },
    });
    expect(Number.isFinite(outputs.output!.data[0] as number)).toBe(true);
  }, 180_000); // two runtimes, each starting ORT
});

/**
 * The origin's real usage with a quota 1 MB above it. Chromium's own override (CDP
 * Storage.overrideQuotaForOrigin) does not reach Playwright's off-the-record contexts: estimate()
 * keeps answering the default quota there, so the quota is the one injected part.
 */
async function quotaOneMbAboveUsage() {
  const { usage = 0 } = await navigator.storage.estimate();
  return { usage, quota: usage + 1_000_000 };
}

describe('quota before download', () => {
  // A distinct seed per release, so no two share chunks.
  async function bigOnePublished(server: { name: string }, version: string, width: number) {
    const seed = 100 + serial++;
    return commands.publishBigModel(server.name, { model: 'q', version, width, external: false, seed });
  }

  it('fails with E_QUOTA before writing anything when the release cannot fit, active release untouched', async () => {
    const server = await startServer('big');
    const { store } = await openStore();
    const small = await bigOnePublished(server, '1.0.0', 300); // 360 kB
    const large = await bigOnePublished(server, '2.0.0', 1000); // 4 MB
    const spare = await bigOnePublished(server, '0.9.0', 300); // complete, no pointer names it
    await downloadRelease(store, spare, { server: server.url });
    await downloadRelease(store, small, { server: server.url });
    await store.activate('q', 'q@1.0.0');
    await store.markGood('q', 'q@1.0.0');
    const before = await store.usage();

    const failure = await downloadRelease(store, large, {
      server: server.url,
      estimate: quotaOneMbAboveUsage,
    }).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: 'E_QUOTA' });
    const needed = large.signed.files.reduce((n, f) => n + f.size, 0);
    expect((failure as Error).message).toContain(`needs ${needed} bytes`);

    // Nothing of 2.0.0 was written: no release record, not one chunk; 1.0.0 still active and whole.
    // Collecting the spare 0.9.0 would not have made room, so it was not collected either.
    expect(await store.getRelease('q@2.0.0')).toBeUndefined();
    expect((await store.getRelease('q@0.9.0'))?.complete).toBe(true);
    expect(await store.usage()).toEqual(before);
    expect(await store.pointers('q')).toMatchObject({ active: 'q@1.0.0', lastKnownGood: 'q@1.0.0' });
    expect((await store.readFile('q@1.0.0', 'model.onnx')).length).toBe(small.signed.files[0]!.size);
  });

  it('collects releases no pointer needs when that makes room', async () => {
    const server = await startServer('big');
    const { store } = await openStore();
    const spare = await bigOnePublished(server, '1.0.0', 1000); // 4 MB, complete but unpinned
    const active = await bigOnePublished(server, '1.1.0', 300);
    const next = await bigOnePublished(server, '2.0.0', 1000);
    await downloadRelease(store, spare, { server: server.url });
    await downloadRelease(store, active, { server: server.url });
    await store.activate('q', 'q@1.1.0');

    // 1 MB free: 2.0.0 (4 MB) fits only once the unpinned 1.0.0 (4 MB) is gone.
    await downloadRelease(store, next, { server: server.url, estimate: quotaOneMbAboveUsage });
    expect(await store.getRelease('q@1.0.0')).toBeUndefined();
    expect((await store.getRelease('q@2.0.0'))?.complete).toBe(true);
    expect((await store.getRelease('q@1.1.0'))?.complete).toBe(true);
  });
});
