import { describe, expect, it } from 'vitest';
import { testBatch, testRecord } from '../../test/support/telemetry-batch.ts';
import { EdgeshipError } from './errors.ts';
import { parseValue } from './parse.ts';
import { DeviceSegmentSchema, deviceClassOf, deviceSegmentOf, segmentValues } from './segments.ts';
import { type TelemetryBatch, TelemetryBatchSchema, TelemetryRecordSchema } from './telemetry.ts';

function batch(overrides: Partial<TelemetryBatch> = {}): TelemetryBatch {
  const record = testRecord({
    inferences: 10,
    errors: { E_INPUT: 1 },
    latencyMs: { '40': 9, '41': 1 },
    features: [{ name: 'rms', counts: [1, 5, 4] }],
  });
  return testBatch([record], {
    windowStart: '2026-11-23T00:00:00.000Z',
    windowEnd: '2026-11-23T00:05:00.000Z',
    ...overrides,
  });
}

describe('telemetry batch schema', () => {
  it('accepts a well-formed batch', () => {
    expect(parseValue(TelemetryBatchSchema, batch(), 'batch').records).toHaveLength(1);
  });

  it.each([
    ['a fingerprint-sized device id', { deviceId: 'x'.repeat(65) }],
    ['a device id that is no public key', { deviceId: 'dev_0123456789' }],
    ['no idempotency key', { batchId: 'not-a-uuid' }],
    ['too many records', { records: new Array(65).fill(batch().records[0]) }],
    ['a negative count', { records: [{ ...batch().records[0]!, inferences: -1 }] }],
    ['a histogram bucket out of range', { records: [{ ...batch().records[0]!, latencyMs: { '999': 1 } }] }],
    ['an unknown error code', { records: [{ ...batch().records[0]!, errors: { E_BOGUS: 1 } }] }],
    [
      'a shadow record without its report',
      { records: [{ ...batch().records[0]!, role: 'shadow' as const }] },
    ],
    ['an unknown field', { extra: true } as Partial<TelemetryBatch>],
  ])('rejects %s', (_, overrides) => {
    expect(() => parseValue(TelemetryBatchSchema, batch(overrides), 'batch')).toThrow(EdgeshipError);
  });
});

describe('device segments', () => {
  it('classes devices from cores and memory, coarsely', () => {
    expect(deviceClassOf(2, 8)).toBe('low');
    expect(deviceClassOf(8, 2)).toBe('low');
    expect(deviceClassOf(8, 8)).toBe('high');
    expect(deviceClassOf(16, undefined)).toBe('high');
    expect(deviceClassOf(6, 8)).toBe('mid');
    expect(deviceClassOf(undefined, undefined)).toBeUndefined();
  });

  it('accepts a record with a segment and refuses fine-grained or unknown values', () => {
    const record = {
      model: 'kws',
      version: '1.0.0',
      backend: 'wasm',
      role: 'active',
      inferences: 3,
      errors: {},
      latencyMs: { '10': 3 },
      downloadBytes: 0,
      downloadMs: 0,
      features: [],
    };
    expect(TelemetryRecordSchema.safeParse(record).success).toBe(true); // optional: older runtimes
    expect(
      TelemetryRecordSchema.safeParse({ ...record, segment: { browser: 'safari', os: 'ios' } }).success,
    ).toBe(true);
    expect(TelemetryRecordSchema.safeParse({ ...record, segment: { cores: 8 } }).success).toBe(false);
    expect(
      DeviceSegmentSchema.safeParse({
        browser: 'firefox',
        browserMajor: 133,
        os: 'linux',
        deviceClass: 'mid',
      }).success,
    ).toBe(true);
    expect(DeviceSegmentSchema.safeParse({ browser: 'firefox', userAgent: 'Mozilla/5.0 ...' }).success).toBe(
      false,
    );
    expect(DeviceSegmentSchema.safeParse({ browser: 'netscape' }).success).toBe(false);
    expect(DeviceSegmentSchema.safeParse({ browserMajor: 133.2 }).success).toBe(false);
    expect(
      segmentValues({ backend: 'webgpu', segment: { browser: 'chrome', browserMajor: 131 } }, '0.4.2'),
    ).toEqual({
      browser: 'chrome',
      browserVersion: 'chrome-131',
      os: 'unknown',
      backend: 'webgpu',
      deviceClass: 'unknown',
      runtime: '0.4',
    });
  });

  it('reads a device segment from the user agent and hardware hints, and nothing finer', () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      [
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.85 Safari/537.36',
        { browser: 'chrome', browserMajor: 131, os: 'windows' },
      ],
      [
        'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36',
        { browser: 'chrome', browserMajor: 131, os: 'linux' },
      ],
      [
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70',
        { browser: 'edge', browserMajor: 131, os: 'windows' },
      ],
      [
        'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
        { browser: 'firefox', browserMajor: 133, os: 'linux' },
      ],
      [
        'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
        { browser: 'safari', browserMajor: 18, os: 'ios' },
      ],
      [
        'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15',
        { browser: 'safari', browserMajor: 17, os: 'macos' },
      ],
      [
        'Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36',
        { browser: 'samsung', browserMajor: 26, os: 'android' },
      ],
      ['SomeBot/1.0', { browser: 'other', os: 'other' }],
    ];
    for (const [userAgent, expected] of cases) {
      const segment = deviceSegmentOf({ userAgent, hardwareConcurrency: 8, deviceMemory: 8 });
      expect(segment).toEqual({ ...expected, deviceClass: 'high' });
      expect(DeviceSegmentSchema.safeParse(segment).success).toBe(true);
    }
    expect(deviceSegmentOf(undefined)).toEqual({});
    expect(deviceSegmentOf({ hardwareConcurrency: 2 })).toEqual({ deviceClass: 'low' });
  });
});
