import { ERROR_CODES, TelemetryBatchSchema } from '@edgeship/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fastBatchCheck, parseTelemetryBatch } from './batch-check.ts';
import { makeBatch } from './testing.ts';

const DEVICE = `${'A'.repeat(42)}Q`;
const name = fc.constantFrom('vad', 'tone', 'a', 'm-1.x_y', 'z'.repeat(64));
const version = fc.constantFrom('1.0.0', '0.1.2-rc.1', '10.20.30', '1.0.0-a-b.c');
const count = fc.oneof(fc.constantFrom(0, 1, 1_000_000_000), fc.integer({ min: 0, max: 1_000_000_000 }));
const histogram = fc.dictionary(
  fc.oneof(fc.integer({ min: 0, max: 199 }).map(String), fc.constantFrom('007', '00', '199', '099')),
  count,
  { maxKeys: 12 },
);
const segment = fc.record(
  {
    browser: fc.constantFrom('chrome', 'firefox', 'other'),
    browserMajor: fc.integer({ min: 0, max: 999 }),
    os: fc.constantFrom('windows', 'ios'),
    deviceClass: fc.constantFrom('low', 'high'),
  },
  { requiredKeys: [] },
);
const quality = fc.record(
  {
    confusion: fc.array(fc.tuple(fc.integer({ min: 0, max: 31 }), fc.integer({ min: 0, max: 31 }), count), {
      maxLength: 4,
    }),
    outcomes: fc.array(
      fc.record({
        name,
        count,
        sum: fc.double({ min: -1e15, max: 1e15, noNaN: true }),
        sumSq: fc.double({ min: 0, max: 1e15, noNaN: true }),
      }),
      { maxLength: 3 },
    ),
  },
  { requiredKeys: [] },
);
const update = fc.record(
  {
    downloads: count,
    resumed: count,
    failures: fc.dictionary(fc.constantFrom(...ERROR_CODES), count, { maxKeys: 3 }),
    fallbacks: fc.dictionary(fc.constantFrom('no-webgpu', 'single-core'), count, { maxKeys: 2 }),
    guardFallbacks: count,
    storagePersisted: fc.boolean(),
  },
  { requiredKeys: [] },
);
const record = fc
  .record(
    {
      model: name,
      version,
      backend: fc.constantFrom('webgpu', 'wasm', 'webgl', 'cpu'),
      role: fc.constantFrom('active', 'shadow'),
      inferences: count,
      errors: fc.dictionary(fc.constantFrom(...ERROR_CODES), count, { maxKeys: 3 }),
      latencyMs: histogram,
      loadMs: fc.double({ min: 0, max: 3_600_000, noNaN: true }),
      downloadBytes: count,
      downloadMs: fc.double({ min: 0, max: 86_400_000, noNaN: true }),
      features: fc.array(fc.record({ name, counts: fc.array(count, { minLength: 2, maxLength: 8 }) }), {
        maxLength: 3,
      }),
      segment,
      update,
      quality,
    },
    {
      requiredKeys: [
        'model',
        'version',
        'backend',
        'role',
        'inferences',
        'errors',
        'latencyMs',
        'downloadBytes',
        'downloadMs',
        'features',
      ],
    },
  )
  .chain((r) =>
    r.role === 'shadow'
      ? fc
          .record({ against: version, compared: count, agreements: count, absDiff: histogram })
          .map((shadow) => ({ ...r, shadow }))
      : fc.constant(r),
  );
const batch = fc
  .array(record, { minLength: 1, maxLength: 4 })
  .map(
    (records) => JSON.parse(JSON.stringify(makeBatch(DEVICE, records as never))) as Record<string, unknown>,
  );

/** Values near each bound and of each wrong type. */
const odd = fc.constantFrom<unknown>(
  -1,
  -0,
  0.5,
  1,
  2,
  31,
  32,
  199,
  200,
  999,
  1000,
  1e9,
  1e9 + 1,
  2 ** 53,
  3_600_001,
  86_400_001,
  -1e15 - 1e3,
  1e15 + 1e3,
  null,
  true,
  false,
  '',
  'a',
  'A',
  'vad',
  '1.0.0',
  '01.0.0',
  'active',
  'shadow',
  'wasm',
  'E_HTTP',
  'nope',
  'chrome',
  '007',
  '200',
  '1000',
  'x'.repeat(65),
  [],
  [0],
  [0, 1],
  [0, 0, 1],
  [0, 0, 1, 2],
  {},
  { name: 'f', counts: [1, 2] },
  '2026-12-02T10:00:00Z',
  '2026-02-30T10:00:00Z',
  '2026-12-02T10:00:00+01:00',
  '00000000-0000-0000-0000-000000000000',
  DEVICE,
  `${'A'.repeat(42)}B`,
  { '0': 1 },
  { E_HTTP: 1 },
  { browser: 'safari' },
);

/** A copy of v with one change at a random place: a value replaced, a key deleted, or one added. */
function mutate(v: unknown, path: number[], replacement: unknown, op: number): unknown {
  if (typeof v !== 'object' || v === null) return replacement;
  const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v);
  if (path.length === 0 || entries.length === 0) {
    if (Array.isArray(v)) return op === 0 ? v.slice(1) : op === 1 ? [...v, replacement] : replacement;
    const copy = { ...(v as Record<string, unknown>) };
    const keys = Object.keys(copy);
    if (op === 0 && keys.length > 0) delete copy[keys[(path[0] ?? 0) % keys.length]!];
    else if (op === 1) copy[typeof replacement === 'string' ? replacement : 'extra'] = replacement;
    else return replacement;
    return copy;
  }
  const [head, ...rest] = path;
  const [key, child] = entries[head! % entries.length]!;
  const next = mutate(child, rest, replacement, op);
  if (Array.isArray(v)) return v.map((x, i) => (i === key ? next : x));
  return { ...(v as Record<string, unknown>), [key]: next };
}

describe('the fast telemetry batch check', () => {
  it('accepts the batches the protocol schema accepts, unchanged', () => {
    fc.assert(
      fc.property(batch, (b) => {
        const zod = TelemetryBatchSchema.safeParse(b);
        expect(fastBatchCheck(b)).toBe(zod.success);
        if (zod.success) expect(zod.data).toEqual(b);
      }),
      { numRuns: 500 },
    );
  });

  it('accepts a mutated batch only when the protocol schema does', () => {
    fc.assert(
      fc.property(
        batch,
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.oneof(odd, fc.jsonValue({ maxDepth: 2 })),
        fc.integer({ min: 0, max: 2 }),
        (b, path, replacement, op) => {
          const m = JSON.parse(JSON.stringify(mutate(b, path, replacement, op)) ?? 'null');
          const zod = TelemetryBatchSchema.safeParse(m);
          expect(fastBatchCheck(m)).toBe(zod.success);
          const parsed = parseTelemetryBatch(m);
          expect(parsed.success).toBe(zod.success);
          if (zod.success) expect(parsed.success && parsed.data).toEqual(zod.data);
        },
      ),
      { numRuns: 20_000 },
    );
  });

  it('agrees with the schema at every length bound', () => {
    const base = () =>
      JSON.parse(
        JSON.stringify(
          makeBatch(DEVICE, [
            {
              model: 'vad',
              version: '1.0.0',
              backend: 'wasm',
              role: 'active',
              inferences: 1,
              errors: {},
              latencyMs: { '3': 1 },
              downloadBytes: 0,
              downloadMs: 0,
              features: [{ name: 'f', counts: [1, 2] }],
            },
          ]),
        ),
      );
    const keys201 = Object.fromEntries(
      [...Array.from({ length: 200 }, (_, i) => String(i)), '007'].map((k) => [k, 1]),
    );
    const cases: Array<(b: ReturnType<typeof base>) => void> = [];
    for (const n of [63, 64, 65])
      cases.push((b) => (b.records = Array.from({ length: n }, () => b.records[0])));
    for (const n of [15, 16, 17])
      cases.push(
        (b) =>
          (b.records[0].features = Array.from({ length: n }, (_, i) => ({ name: `f${i}`, counts: [1, 2] }))),
      );
    for (const n of [1, 2, 64, 65])
      cases.push((b) => (b.records[0].features[0].counts = Array.from({ length: n }, () => 1)));
    for (const n of [16, 17])
      cases.push(
        (b) =>
          (b.records[0].quality = {
            outcomes: Array.from({ length: n }, () => ({ name: 'o', count: 1, sum: 1, sumSq: 1 })),
          }),
      );
    for (const n of [1024, 1025])
      cases.push((b) => (b.records[0].quality = { confusion: Array.from({ length: n }, () => [0, 0, 1]) }));
    cases.push((b) => (b.records[0].latencyMs = keys201));
    cases.push((b) => (b.records[0].latencyMs = Object.fromEntries(Object.entries(keys201).slice(0, 200))));
    cases.push((b) => (b.records = []));
    cases.push((b) => (b.records[0].shadow = { against: '1.0.0', compared: 1, agreements: 1, absDiff: {} }));
    cases.push((b) => {
      b.records[0].role = 'shadow';
    });
    cases.push((b) => (b.records[0].quality = { outcomes: [{ name: 'o', count: 1, sum: 1, sumSq: -1 }] }));
    const answers = cases.map((change) => {
      const b = base();
      change(b);
      const zod = TelemetryBatchSchema.safeParse(b).success;
      expect(fastBatchCheck(b)).toBe(zod);
      return zod;
    });
    // Both answers occur: the bounds are where the schema changes its mind.
    expect(answers).toContain(true);
    expect(answers).toContain(false);
  });

  it("refuses with the schema's own issues", () => {
    const parsed = parseTelemetryBatch({ schema: 2 });
    expect(parsed.success).toBe(false);
    expect(!parsed.success && parsed.error.issues).toEqual(
      TelemetryBatchSchema.safeParse({ schema: 2 }).error!.issues,
    );
  });
});
