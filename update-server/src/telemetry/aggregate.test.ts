import type { TelemetryRecord } from '@edgeship/protocol';
import { expect, it } from 'vitest';
import {
  addRecordValues,
  batchDeltas,
  emptyValues,
  mergeValues,
  recordValues,
  windowOf,
} from './aggregate.ts';
import { makeBatch, makeRecord } from './testing.ts';

const shadowAbsDiff = { '50': 3 };

it('sums records of one release, backend and role into one delta, counting the batch once', () => {
  const batch = makeBatch('device-0001', [
    makeRecord({
      model: 'm',
      version: '1.0.0',
      latenciesMs: [1, 2],
      errors: { E_INPUT: 1 },
      energy: [1, 0, 2],
    }),
    makeRecord({ model: 'm', version: '1.0.0', latenciesMs: [2], errors: { E_INPUT: 2 }, energy: [0, 1, 0] }),
    makeRecord({ model: 'm', version: '1.0.0', backend: 'webgpu', latenciesMs: [9] }),
  ]);
  const deltas = [...batchDeltas(batch, 120).values()];
  expect(deltas).toHaveLength(2);
  const [key, values] = deltas.find(([k]) => k.backend === 'wasm')!;
  expect(key).toMatchObject({ model: 'm', version: '1.0.0', role: 'active', windowStart: 120 });
  expect(values).toMatchObject({ batches: 1, inferences: 3, errors: 3, errorsByCode: { E_INPUT: 3 } });
  expect(values.features.energy).toEqual([1, 1, 2]);
});

it('merges exactly, in any order', () => {
  const a = batchDeltas(
    makeBatch('device-0001', [
      makeRecord({
        model: 'm',
        version: '2.0.0',
        role: 'shadow',
        latenciesMs: [3, 4],
        shadow: { against: '1.0.0', compared: 3, agreements: 2, absDiff: shadowAbsDiff },
      }),
    ]),
    0,
  );
  const b = batchDeltas(
    makeBatch('device-0002', [
      makeRecord({
        model: 'm',
        version: '2.0.0',
        role: 'shadow',
        latenciesMs: [5],
        shadow: { against: '1.0.0', compared: 1, agreements: 1, absDiff: { '51': 1 } },
      }),
    ]),
    0,
  );
  const va = [...a.values()][0]![1];
  const vb = [...b.values()][0]![1];
  const ab = mergeValues(mergeValues(emptyValues(), va), vb);
  const ba = mergeValues(mergeValues(emptyValues(), vb), va);
  expect(ab).toEqual(ba);
  expect(ab.shadow['1.0.0']).toEqual({ compared: 4, agreements: 3, absDiff: { '50': 3, '51': 1 } });
  expect(ab.inferences).toBe(3);
  expect(ab.batches).toBe(2);
});

it('adds a record in place to the same sums as merging its own values, every optional part included', () => {
  const full = (n: number): TelemetryRecord => ({
    ...makeRecord({
      model: 'm',
      version: '1.0.0',
      latenciesMs: [n, 2 * n],
      errors: { E_INPUT: n, E_HEALTH_CHECK: n % 2 },
      energy: [n, 0, 1],
      shadow: { against: '0.9.0', compared: n + 1, agreements: n, absDiff: { [String(40 + n)]: n } },
    }),
    loadMs: 10 * n,
    downloadBytes: 1000 * n,
    downloadMs: n,
    update: {
      downloads: n,
      resumed: 1,
      failures: { E_NETWORK: n },
      fallbacks: { 'no-webgpu': 1 },
      guardFallbacks: n % 2,
      storagePersisted: n % 2 === 0,
    },
    quality: {
      confusion: [
        [0, 1, n],
        [1, 1, 2],
      ],
      outcomes: [{ name: 'click', count: n, sum: n, sumSq: n }],
    },
  });
  const merged = emptyValues();
  const added = emptyValues();
  for (const n of [1, 2, 3]) {
    mergeValues(merged, recordValues(full(n)));
    addRecordValues(added, full(n), true);
  }
  expect(added).toEqual(merged);
  expect(added).toMatchObject({ batches: 3, errors: 8, loadCount: 3, downloadBytes: 6000 });
  expect(added.pipeline).toMatchObject({ downloads: 6, persistedReports: 3, persisted: 1 });
  expect(added.quality.confusion).toEqual({ '0,1': 6, '1,1': 6 });
  expect(addRecordValues(emptyValues(), full(1), false).batches).toBe(0);
});

it('floors times to their window', () => {
  expect(windowOf(Date.UTC(2026, 0, 1, 0, 1, 59, 999), 60)).toBe(Date.UTC(2026, 0, 1, 0, 1) / 1000);
  expect(windowOf(Date.UTC(2026, 0, 1, 0, 2), 60)).toBe(Date.UTC(2026, 0, 1, 0, 2) / 1000);
});
