// Start-up in a real Chromium: nothing on it waits for a permission prompt, and a worker that
// never answers fails createRuntime with a typed timeout instead of hanging the page.
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from './client.ts';
import type { RuntimeEvent } from './worker/config.ts';

const open: Runtime[] = [];
const restore: Array<() => void> = [];

afterEach(async () => {
  for (const undo of restore.splice(0)) undo();
  for (const runtime of open.splice(0)) await runtime.dispose();
});

const options = () => ({
  // Start-up does not contact the server: nothing listens here, and nothing needs to.
  server: 'http://127.0.0.1:9',
  app: 'demo-app',
  channel: 'stable',
  trustedRoot: { keys: [], threshold: 1 } as never,
  wasmPaths: new URL('/node_modules/onnxruntime-web/dist/', location.origin).href,
  telemetry: false,
  storagePrefix: `start${Date.now()}-${Math.random()}`,
});

/**
 * navigator.storage.persist() as Firefox behaves while its permission prompt is open: pending
 * until the user answers. Returns the "answer" function.
 */
function promptingPersist(): (answer: boolean) => void {
  const storage = navigator.storage;
  const original = Object.getOwnPropertyDescriptor(StorageManager.prototype, 'persist')!;
  let answer: (value: boolean) => void = () => {};
  let calls = 0;
  Object.defineProperty(storage, 'persist', {
    configurable: true,
    value: () => {
      calls++;
      return new Promise<boolean>((resolve) => {
        answer = resolve;
      });
    },
  });
  restore.push(() => {
    delete (storage as { persist?: unknown }).persist;
    Object.defineProperty(StorageManager.prototype, 'persist', original);
  });
  return (value) => {
    expect(calls).toBe(1);
    answer(value);
  };
}

describe('start-up', () => {
  it('does not wait for navigator.storage.persist(); storagePersisted follows the answer when it comes', async () => {
    const answer = promptingPersist();
    const runtime = await createRuntime(options());
    open.push(runtime);
    expect(runtime.storagePersisted).toBeNull();
    expect((await runtime.status()).storagePersisted).toBeNull();
    const events: RuntimeEvent[] = [];
    runtime.on('storage-persisted', (event) => events.push(event));

    answer(true); // the user clicked "Allow"
    await expect.poll(() => runtime.storagePersisted).toBe(true);
    expect(events).toEqual([{ type: 'storage-persisted', persisted: true }]);
    expect((await runtime.status()).storagePersisted).toBe(true);
  });

  it('asks only when the app says so with persistStorage: false', async () => {
    const answer = promptingPersist();
    const runtime = await createRuntime({ ...options(), persistStorage: false });
    open.push(runtime);
    const asked = runtime.persistStorage();
    answer(false);
    expect(await asked).toBe(false);
    expect(runtime.storagePersisted).toBe(false);
  });

  it('rejects with E_TIMEOUT when the worker never answers', async () => {
    const silent = new Worker(
      URL.createObjectURL(new Blob(['// never answers'], { type: 'text/javascript' })),
    );
    const started = performance.now();
    await expect(createRuntime({ ...options(), worker: silent, startTimeoutMs: 500 })).rejects.toMatchObject({
      code: 'E_TIMEOUT',
      message: expect.stringMatching(/did not start within 500 ms/),
    });
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(5_000);
  });
});
