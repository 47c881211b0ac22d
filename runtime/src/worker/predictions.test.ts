import type { Release } from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import { TelemetryCollector } from '../telemetry/collector.ts';
import type { LoadedModel } from './model-slot.ts';
import { type LoadedModels, PredictionBook } from './predictions.ts';

/** Only what the book reads of a release: its name and its classes. */
const release = (version: string, monitoring: Partial<Release['monitoring']>) =>
  ({ model: 'intent', version, monitoring: { features: [], ...monitoring } }) as unknown as Release;
const three = (version: string) =>
  release(version, { classes: { tensor: 'scores', labels: ['buy', 'browse', 'leave'] } });
const scores = (...values: number[]) => ({
  scores: { data: new Float32Array(values), dims: [values.length] },
});

describe('prediction ids in the worker', () => {
  it('counts labels for the release that predicted, and forgets the least recently used first', () => {
    const collector = new TelemetryCollector();
    const book = new PredictionBook(collector, 3);
    const a = book.add(three('1.0.0'), 'wasm', scores(0.1, 0.7, 0.2)); // browse
    const b = book.add(three('1.0.0'), 'wasm', scores(0.8, 0.1, 0.1)); // buy
    const c = book.add(three('1.1.0'), 'wasm', scores(0.1, 0.1, 0.8)); // leave
    expect(book.feedback(a, 'browse')).toEqual({ recorded: true }); // a is now the newest
    const d = book.add(three('1.1.0'), 'wasm', scores(0.2, 0.3, 0.5)); // evicts b, not a
    expect(book.feedback(b, 'buy')).toEqual({ recorded: false, reason: 'unknown-prediction' });
    expect(book.feedback(c, 2)).toEqual({ recorded: true });
    expect(book.feedback(d, 'buy')).toEqual({ recorded: true });
    expect(() => book.feedback(a, 'stay')).toThrow(/none of intent@1\.0\.0's classes/);
    expect(book.outcomeFor(a, 'accepted', 1)).toEqual({ recorded: true });

    const records = Object.fromEntries(collector.drain().map((r) => [r.version, r.quality]));
    expect(records['1.0.0']).toEqual({
      confusion: [[1, 1, 1]],
      outcomes: [{ name: 'accepted', count: 1, sum: 1, sumSq: 1 }],
    });
    expect(records['1.1.0']!.confusion!.sort()).toEqual([
      [0, 2, 1],
      [2, 2, 1],
    ]);
  });

  it('reads a binary decision at its threshold, and says when a release is no classifier', () => {
    const book = new PredictionBook(new TelemetryCollector());
    const vad = release('1.0.0', { decision: { tensor: 'p', threshold: 0.7 } });
    const below = book.add(vad, 'wasm', { p: { data: new Float32Array([0.6]), dims: [1] } });
    expect(book.feedback(below, 'negative')).toEqual({ recorded: true });
    expect(book.feedback(below, true)).toEqual({ recorded: true });
    const plain = book.add(release('1.0.0', {}), 'wasm', {});
    expect(book.feedback(plain, 'x')).toEqual({ recorded: false, reason: 'not-a-classifier' });
  });

  it('counts an outcome without a prediction id for the one loaded release, or refuses to guess', () => {
    const collector = new TelemetryCollector();
    const book = new PredictionBook(collector);
    const running = (...versions: string[]): LoadedModels => {
      const models = new Map(
        versions.map((version, i) => [
          i === 0 ? 'intent' : `other-${i}`,
          { release: three(version), backend: { chosen: { backend: 'wasm' } } } as unknown as LoadedModel,
        ]),
      );
      return { names: () => [...models.keys()], loaded: (name) => models.get(name) };
    };
    expect(book.outcome(running('1.2.0'), 'accepted', true, {})).toEqual({ recorded: true });
    expect(book.outcome(running('1.2.0', '2.0.0'), 'accepted', 1, { model: 'intent' })).toEqual({
      recorded: true,
    });
    expect(() => book.outcome(running('1.2.0', '2.0.0'), 'accepted', 1, {})).toThrow(
      /2 models are loaded: name the model/,
    );
    expect(() => book.outcome(running(), 'accepted', 1, { model: 'intent' })).toThrow(/intent is not loaded/);
    // The value is checked first, whatever the prediction id or model.
    expect(() => book.outcome(running(), 'accepted', Number.NaN, { predictionId: 'x' })).toThrow(
      /finite number/,
    );
    expect(book.outcome(running(), 'accepted', 1, { predictionId: 'forgotten' })).toEqual({
      recorded: false,
      reason: 'unknown-prediction',
    });

    const [record] = collector.drain();
    expect(record!.version).toBe('1.2.0');
    expect(record!.quality!.outcomes).toEqual([{ name: 'accepted', count: 2, sum: 2, sumSq: 2 }]);
  });
});
