// The engine measured for a release is remembered per `backend` option, in a real browser with
// real onnxruntime-web: an app that forces WASM races its thread counts once, on the first load,
// and every later start of that release opens straight on the winner.
import { afterEach, describe, expect, it } from 'vitest';
import {
  recordEvents,
  serverWithVad,
  startRuntime,
  stopAll,
  uniqueName,
} from '../../test-fixtures/runtime-harness.ts';
import type { RuntimeEvent } from './config.ts';

afterEach(stopAll);

const steps = (events: RuntimeEvent[]) =>
  events.flatMap((e) => (e.type === 'engine-starting' ? [e.step] : []));

describe('the remembered engine', () => {
  it('under a forced backend: the first load races its thread counts, a later start runs no trial', async () => {
    const server = await serverWithVad('remembered');
    const storagePrefix = uniqueName('remembered');
    // This page is cross-origin isolated on 2+ cores: WASM on 1 and on several threads compete.
    expect(globalThis.crossOriginIsolated).toBe(true);

    const first = await startRuntime(server, { storagePrefix, backend: 'wasm' });
    const firstEvents = recordEvents(first);
    await first.load('vad');
    const measured = (await first.status()).models.find((m) => m.name === 'vad')?.backend;
    expect(measured?.remembered).toBe(false);
    expect(measured?.trials.length).toBeGreaterThanOrEqual(2);
    expect(steps(firstEvents)).toContain('probe');
    await first.dispose();

    const later = await startRuntime(server, { storagePrefix, backend: 'wasm' });
    const laterEvents = recordEvents(later);
    await later.load('vad');
    const reused = (await later.status()).models.find((m) => m.name === 'vad')?.backend;
    expect(reused).toMatchObject({ chosen: measured?.chosen, remembered: true, trials: [] });
    expect(steps(laterEvents)).toEqual(['read', 'engine']);
  });
});
