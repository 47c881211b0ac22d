// Ground truth from the app, end to end in a real browser against a real server: runs return
// prediction ids, the app's labels and outcomes become confusion counts and outcome sums in the
// worker, travel with signed telemetry, and the server's fleet report shows accuracy per release,
// late feedback counted for the release that made the prediction.
import { afterEach, describe, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import type { QualitySummary } from '../../update-server/src/telemetry/quality.ts';
import {
  serverWithVad,
  sileroChirpInputs,
  startTelemetryRuntime,
  stopAll,
} from '../test-fixtures/runtime-harness.ts';
import type { NamedTensors } from './engines/tensor.ts';

afterEach(stopAll);

/** Loud and quiet frames, so the VAD says speech for some and not for others. */
function frame(i: number): NamedTensors {
  return sileroChirpInputs(i, i % 2 === 0 ? 1 : 0.001);
}

describe('outcomes and ground truth from the app', () => {
  it('sends labels and outcomes; the server shows accuracy per release, late feedback on the right one', async () => {
    const server = await serverWithVad('outcomes');
    const runtime = await startTelemetryRuntime(server);
    const vad = await runtime.load('vad');

    // 1.0.0: six predictions; the app confirms four and contradicts two.
    const first: Array<{ id: string; speech: boolean }> = [];
    for (let i = 0; i < 6; i++) {
      const outputs = await vad.run(frame(i));
      expect(Object.keys(outputs).sort()).toEqual(['output', 'stateN']); // the id is no tensor
      expect(outputs.predictionId).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
      first.push({ id: outputs.predictionId, speech: (outputs.output!.data[0] as number) >= 0.5 });
    }
    expect(new Set(first.map((p) => p.id)).size).toBe(6);
    for (const [i, p] of first.slice(0, 4).entries()) {
      // Labels by name, by index and (binary) by boolean.
      const label = [
        p.speech ? 'positive' : 'negative',
        p.speech ? 1 : 0,
        p.speech,
        p.speech ? 'positive' : 'negative',
      ][i]!;
      expect(await runtime.feedback(p.id, { label })).toEqual({ recorded: true });
    }
    // Two it got wrong; one of them arrives only after 1.1.0 is active (below).
    expect(await vad.feedback(first[4]!.id, { label: !first[4]!.speech })).toEqual({ recorded: true });
    await vad.outcome('accepted', true, { predictionId: first[0]!.id });
    await vad.outcome('accepted', false);
    expect(await runtime.outcome('accepted', 1)).toEqual({ recorded: true });

    // What is refused or not counted: a label that is no class, an id never made here, a bad value.
    await expect(runtime.feedback(first[0]!.id, { label: 'maybe' })).rejects.toMatchObject({
      code: 'E_INPUT',
    });
    expect(await runtime.feedback('feedbeef-0', { label: 'positive' })).toEqual({
      recorded: false,
      reason: 'unknown-prediction',
    });
    await expect(runtime.outcome('accepted', Number.NaN)).rejects.toMatchObject({ code: 'E_INPUT' });

    // 1.1.0 becomes active; late feedback for a 1.0.0 prediction still counts for 1.0.0.
    await commands.publishModel(server.name, { version: '1.1.0', source: 'silero', promote: true });
    await runtime.checkForUpdates();
    await runtime.load('vad');
    expect(await vad.status()).toMatchObject({ loaded: 'vad@1.1.0' });
    const late = first[5]!;
    expect(await runtime.feedback(late.id, { label: late.speech ? 'negative' : 'positive' })).toEqual({
      recorded: true,
    });
    const onNew = await vad.run(frame(0));
    const speech = (onNew.output!.data[0] as number) >= 0.5;
    await runtime.feedback(onNew.predictionId, { label: speech ? 'positive' : 'negative' });
    await vad.outcome('accepted', 1);

    expect((await runtime.sendTelemetry()).sent).toBeGreaterThanOrEqual(1);
    const report = (await commands.fleetReport(server.name, { model: 'vad' })) as {
      versions: Array<{ version: string; inferences: number; quality: QualitySummary }>;
    };
    const quality = Object.fromEntries(report.versions.map((v) => [v.version, v.quality]));
    expect(quality['1.0.0']).toMatchObject({
      labelled: 6,
      correct: 4,
      accuracy: 4 / 6,
      labels: ['negative', 'positive'],
    });
    const matrix = quality['1.0.0']!.confusion!;
    expect(matrix.flat().reduce((a, b) => a + b, 0)).toBe(6);
    expect(matrix[0]![0]! + matrix[1]![1]!).toBe(4);
    expect(quality['1.0.0']!.outcomes.accepted).toMatchObject({ count: 3, mean: 2 / 3 });
    expect(quality['1.1.0']).toMatchObject({ labelled: 1, correct: 1, accuracy: 1 });
    expect(quality['1.1.0']!.outcomes.accepted).toMatchObject({ count: 1, mean: 1 });
  });
});
