import { describe, expect, it } from 'vitest';
import { EdgeshipError } from './errors.ts';
import { parseValue } from './parse.ts';
import { DeviceSegmentSchema, deviceClassOf, segmentValues } from './segments.ts';
import { type TelemetryBatch, TelemetryBatchSchema, TelemetryRecordSchema } from './telemetry.ts';

function batch(overrides: Partial<TelemetryBatch> = {}): TelemetryBatch {
  return {
    schema: 1,
    batchId: '8f14e45f-ceea-4e7a-9b6e-2c1c3f6a2b1d',
    deviceId: 'O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik',
    app: 'demo-app',
    channel: 'stable',
    runtimeVersion: '0.1.0',
    windowStart: '2026-11-23T00:00:00.000Z',
    windowEnd: '2026-11-23T00:05:00.000Z',
    dropped: 0,
    records: [
      {
        model: 'vad',
        version: '1.0.0',
        backend: 'wasm',
        role: 'active',
        inferences: 10,
        errors: { E_INPUT: 1 },
        latencyMs: { '40': 9, '41': 1 },
        downloadBytes: 0,
        downloadMs: 0,
        features: [{ name: 'rms', counts: [1, 5, 4] }],
      },
    ],
    ...overrides,
  };
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
});
