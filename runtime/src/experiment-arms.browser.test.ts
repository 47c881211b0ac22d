// A multi-arm rollout on a real device, in real Chromium against a real update server on loopback:
// the runtime verifies the manifest's signed arms, chooses its bucket's arm (protocol
// chooseRelease), downloads that arm's release and runs it; when the arms are re-split so that its
// bucket falls in another arm, it runs that arm's release at the next check.
import { rolloutBucket } from '@edgeship/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import { createRuntime, type Runtime } from './client.ts';
import type { NamedTensors } from './engines/tensor.ts';

const WASM_PATHS = new URL('/node_modules/onnxruntime-web/dist/', location.origin).href;
const open: Runtime[] = [];
const servers: string[] = [];

afterEach(async () => {
  for (const runtime of open.splice(0)) await runtime.dispose();
  for (const name of servers.splice(0)) await commands.stopEdgeshipServer(name);
});

describe('a device in an experiment with several arms', () => {
  it("runs its bucket's arm, and another arm once the split moves its bucket there", {
    timeout: 180_000,
  }, async () => {
    const name = `arms-${Date.now()}`;
    servers.push(name);
    const server = await commands.startEdgeshipServer(name);
    // Three releases with outputs that tell them apart: x, 1 / x, -x.
    await commands.publishModel(name, { version: '1.0.0', source: { tiny: 'identity' }, promote: true });
    await commands.publishModel(name, { version: '1.1.0', source: { tiny: 'reciprocal' } });
    await commands.publishModel(name, { version: '1.2.0', source: { tiny: 'negate' } });
    const runtime = await createRuntime({
      server: server.url,
      app: 'demo-app',
      channel: 'stable',
      trustedRoot: server.trustedRoot as never,
      wasmPaths: WASM_PATHS,
      backend: 'wasm',
      telemetry: false,
      checkOnLoad: false,
      checkIntervalMs: 0,
      activation: 'immediate',
      models: ['vad'],
      storagePrefix: name,
    });
    open.push(runtime);
    const input = (): NamedTensors => ({ input: { data: new Float32Array([2, 1, 4, 8]), dims: [1, 4] } });

    // Arms covering every bucket; the salt is new per rollout, so the device's bucket is known
    // only now. Bucket 0 is always arm 1's: start again (one chance in 10,000).
    let rollout = await commands.startArmsRollout(name, [
      { release: '1.1.0', shareBps: 5000 },
      { release: '1.2.0', shareBps: 5000 },
    ]);
    let bucket = await rolloutBucket(rollout.salt, runtime.deviceId);
    while (bucket === 0 || bucket === 9_999) {
      rollout = await commands.startArmsRollout(name, [
        { release: '1.1.0', shareBps: 5000 },
        { release: '1.2.0', shareBps: 5000 },
      ]);
      bucket = await rolloutBucket(rollout.salt, runtime.deviceId);
    }
    // Arm 2 takes the buckets from this device's: the device is in arm 2.
    await commands.setArms(name, rollout.rolloutId, [
      { release: '1.1.0', shareBps: bucket },
      { release: '1.2.0', shareBps: 10_000 - bucket },
    ]);
    expect((await runtime.checkForUpdates()).targets.vad).toMatchObject({
      active: 'vad@1.2.0',
      inRollout: true,
    });
    expect(Array.from((await runtime.run('vad', input())).output!.data as Float32Array)).toEqual([
      -2, -1, -4, -8,
    ]);

    // Arm 1 grows past its bucket: the device moves to arm 1 at its next check.
    await commands.setArms(name, rollout.rolloutId, [
      { release: '1.1.0', shareBps: bucket + 1 },
      { release: '1.2.0', shareBps: 9_999 - bucket },
    ]);
    expect((await runtime.checkForUpdates()).targets.vad).toMatchObject({
      active: 'vad@1.1.0',
      inRollout: true,
    });
    expect(Array.from((await runtime.run('vad', input())).output!.data as Float32Array)).toEqual([
      0.5, 1, 0.25, 0.125,
    ]);
  });
});
