// Segment exclusion on a real device, in real Chromium against a real update server on loopback:
// the runtime reads its own coarse segment (browser=chrome here) and, when a rollout it is inside
// excludes that segment, stays on or returns to production; an exclusion of another segment
// leaves it on the candidate.
import { deviceSegmentOf } from '@edgeship/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import { BROWSER } from '../test-fixtures/browser-fixtures.ts';
import { startServer, startVadRuntime, stopAll } from '../test-fixtures/runtime-harness.ts';
import type { NamedTensors } from './engines/tensor.ts';

afterEach(stopAll);

describe('a device in an excluded segment', () => {
  it('does not take the candidate, and leaves it when its own segment is excluded', {
    timeout: 180_000,
  }, async () => {
    // What the page and its worker say of themselves: the browser (Chromium, or Firefox ESR in
    // the browser-firefox project), its major version, a device class.
    const own = BROWSER === 'firefox' ? 'firefox' : 'chrome';
    const other = own === 'firefox' ? 'chrome' : 'firefox';
    const segment = deviceSegmentOf(navigator);
    expect(segment.browser).toBe(own);
    expect(segment.browserMajor).toBeGreaterThan(100);

    const server = await startServer('exclude');
    const name = server.name;
    await commands.publishModel(name, { version: '1.0.0', source: { tiny: 'identity' }, promote: true });
    const canary = await commands.publishModel(name, {
      version: '1.1.0',
      source: { tiny: 'reciprocal' },
      rollout: { shareBps: 10_000 },
    });
    const runtime = await startVadRuntime(server, name, { checkIntervalMs: 0, activation: 'immediate' });
    // A fresh tensor per call: the runtime transfers its buffer to the worker.
    const input = (): NamedTensors => ({ input: { data: new Float32Array([2, 1, 4, 8]), dims: [1, 4] } });

    // Another browser's exclusion does not concern this device: it takes the candidate (1 / x).
    await commands.excludeSegments(name, canary.rolloutId!, [{ dimension: 'browser', value: other }]);
    expect((await runtime.checkForUpdates()).targets.vad).toMatchObject({
      active: 'vad@1.1.0',
      inRollout: true,
    });
    expect((await runtime.run('vad', input())).output!.data[0]).toBe(0.5);

    // Its own browser excluded: back to production at the next check, without a reload.
    await commands.excludeSegments(name, canary.rolloutId!, [{ dimension: 'browser', value: own }]);
    expect((await runtime.checkForUpdates()).targets.vad).toMatchObject({
      active: 'vad@1.0.0',
      inRollout: false,
    });
    expect((await runtime.run('vad', input())).output!.data[0]).toBe(2);
    expect(await runtime.status().then((s) => s.models[0])).toMatchObject({
      active: 'vad@1.0.0',
      loaded: 'vad@1.0.0',
    });
  });
});
