// onnxruntime-web started before a release's bytes are at hand (open-engine.ts startEngineEarly),
// in a real browser with real ORT: its WASM files are fetched and compiled while a download or a
// read from the store would still be running, and only when the engine is known without a trial.
// ORT starts once per realm, so the tests share this file's page and run in order: first the case
// that must leave ORT unstarted, then the one that starts it.
import { releaseId } from '@edgeship/protocol';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import { sileroFeeds, sileroModel } from '../../test-fixtures/browser-fixtures.ts';
import { uniqueName } from '../../test-fixtures/runtime-harness.ts';
import { createOnnxEngine, ortThreads } from '../engines/onnx-engine.ts';
import { ModelStore } from '../store/model-store.ts';
import { makeRelease } from '../store/test-releases.ts';
import type { RuntimeConfig } from './config.ts';
import { startEngineEarly } from './open-engine.ts';

const assets: string[] = [];
const stores: ModelStore[] = [];

afterEach(async () => {
  for (const url of assets.splice(0)) await commands.stopStallingAssets(url);
});

afterAll(() => {
  for (const store of stores.splice(0)) store.close();
});

/** ORT's files on a loopback origin that serves them and logs each request (none held). */
async function loggedAssets(): Promise<string> {
  const url = await commands.startStallingAssets(0);
  assets.push(url);
  return url;
}

async function storeWithRelease() {
  const store = await ModelStore.open(uniqueName('early-start'));
  stores.push(store);
  // Only the release's format and id matter before its bytes are read.
  const signed = await makeRelease('vad', '1.0.0', { 'model.onnx': new Uint8Array(64) });
  await store.putRelease(signed);
  return { store, release: signed.signed, id: releaseId(signed.signed) };
}

describe('starting onnxruntime-web before the model is at hand', () => {
  it('starts nothing when a trial must choose the engine (ORT would fix the wrong thread count)', async () => {
    const wasmPaths = await loggedAssets();
    const { store, release } = await storeWithRelease();
    const config = { wasmPaths, backend: 'auto' } as RuntimeConfig;
    // This page is cross-origin isolated on 2+ cores: WASM on 1 or on several threads (and WebGPU
    // where present) are candidates, and nothing is remembered for this release.
    expect(globalThis.crossOriginIsolated).toBe(true);
    await startEngineEarly(store, release, config);
    expect(ortThreads()).toBeUndefined();
    expect(await commands.stallingAssetsLog(wasmPaths)).toEqual([]);
  });

  it("starts the remembered engine's ORT, whose first session then finds it ready", async () => {
    const wasmPaths = await loggedAssets();
    const { store, release, id } = await storeWithRelease();
    await store.setMeta(`engine:${id}`, { backend: 'wasm', threads: 1 });
    const config = { wasmPaths, backend: 'auto' } as RuntimeConfig;
    await startEngineEarly(store, release, config);
    // ORT's glue and its WASM binary came from the app's path, with no model bytes read yet.
    const paths = (await commands.stallingAssetsLog(wasmPaths)).map((r) => r.path);
    expect(paths.some((p) => p.endsWith('.mjs'))).toBe(true);
    expect(paths.some((p) => p.endsWith('.wasm'))).toBe(true);
    // The remembered thread count is the one ORT now runs with in this realm.
    expect(ortThreads()).toBe(1);

    // The model's session runs on the started ORT, fetching nothing more.
    const engine = await createOnnxEngine(await sileroModel(), { backend: 'wasm', threads: 1 });
    try {
      const out = await engine.run(sileroFeeds(new Float32Array(512), new Float32Array(256)));
      expect(Number.isFinite((out.output!.data as Float32Array)[0])).toBe(true);
    } finally {
      await engine.dispose();
    }
    expect(await commands.stallingAssetsLog(wasmPaths)).toHaveLength(paths.length);
  });
});
