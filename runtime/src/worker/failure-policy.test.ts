import {
  HashMismatchError,
  LengthMismatchError,
  NetworkError,
  NotFoundError,
  QuotaError,
} from '@edgeship/protocol';
import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, NoBackendError } from '../engines/engine.ts';
import type { ReleaseFailure } from '../store/release-failure.ts';
import { ActivationError } from './activation-error.ts';
import {
  activationFingerprint,
  classifyFailure,
  isOfferedAgain,
  isRefused,
  nextFailure,
  retryDelayMs,
} from './failure-policy.ts';

const policy = { initialMs: 60_000, maxMs: 3_600_000 };
const options = {
  runtimeVersion: '0.1.0',
  wasmPaths: 'https://app.example/ort/',
  crossOriginIsolated: true,
  userAgent: 'Chromium',
};
const fingerprint = activationFingerprint(options);
const failure = {
  release: 'vad@1.0.0',
  model: 'vad',
  code: 'E_HEALTH_CHECK' as const,
  message: 'x',
  phase: 'engine' as const,
};

function failTimes(n: number, cause: 'environment' | 'model', start = 0): ReleaseFailure {
  let record: ReleaseFailure | undefined;
  for (let i = 0; i < n; i++) {
    const now = record?.retryAt ?? start;
    record = nextFailure(record, failure, cause, { now, fingerprint, manifestVersion: 7, policy });
  }
  return record!;
}

/** ORT's words when its .mjs could not be fetched (Chromium), as selectEngine collects them. */
const wasmMissing = new NoBackendError('onnx', [
  {
    config: { backend: 'wasm', threads: 2 },
    code: 'session-failed',
    reason:
      'wasm×2: no available backend found. ERR: [wasm] TypeError: Failed to fetch dynamically imported module: https://app.example/ort/ort-wasm-simd-threaded.jsep.mjs',
  },
  { config: { backend: 'webgpu' }, code: 'no-webgpu', reason: 'no WebGPU: navigator.gpu is missing' },
]);

describe('retryDelayMs', () => {
  it('starts at initialMs, doubles per failure in a row, and stops at maxMs', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryDelayMs(n, policy))).toEqual([
      60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000,
    ]);
    expect(retryDelayMs(1000, policy)).toBe(3_600_000); // no overflow to Infinity or NaN
  });
});

describe('nextFailure and isRefused', () => {
  it('refuses an environment failure until its backoff is over, then lets a load or check retry', () => {
    const record = failTimes(3, 'environment', 1_000);
    expect(record.attempts).toBe(3);
    expect(record.retryAt! - record.failedAt).toBe(240_000);
    expect(isRefused(record, { now: record.retryAt! - 1, fingerprint })).toBe(true);
    expect(isRefused(record, { now: record.retryAt!, fingerprint })).toBe(false);
  });

  it('retries an environment failure at once when the runtime version or its options change', () => {
    const record = failTimes(2, 'environment');
    const now = record.failedAt + 1;
    expect(isRefused(record, { now, fingerprint })).toBe(true);
    for (const changed of [
      { ...options, runtimeVersion: '0.2.0' },
      { ...options, wasmPaths: 'https://app.example/ort/1.31/' },
      { ...options, backend: 'webgpu' },
      { ...options, crossOriginIsolated: false },
    ]) {
      expect(isRefused(record, { now, fingerprint: activationFingerprint(changed) })).toBe(false);
    }
    // …and counts afresh under the new fingerprint.
    const after = nextFailure(record, failure, 'environment', {
      now,
      fingerprint: activationFingerprint({ ...options, runtimeVersion: '0.2.0' }),
      manifestVersion: 7,
      policy,
    });
    expect(after.attempts).toBe(1);
  });

  it('refuses a model failure whatever the time or options, and never schedules a retry', () => {
    const record = failTimes(1, 'model');
    expect(record.retryAt).toBeNull();
    expect(isRefused(record, { now: Number.MAX_SAFE_INTEGER, fingerprint: 'other' })).toBe(true);
  });

  it('lifts a model failure only when a newer manifest offers the release', () => {
    const record = failTimes(1, 'model'); // failed under manifest 7
    expect(isOfferedAgain(record, 7, true)).toBe(false);
    expect(isOfferedAgain(record, 8, false)).toBe(false);
    expect(isOfferedAgain(record, 8, true)).toBe(true);
    expect(isOfferedAgain(failTimes(1, 'environment'), 8, true)).toBe(false);
  });
});

describe('classifyFailure', () => {
  it('blames the environment for an engine whose WASM was not fetched', () => {
    const error = new ActivationError('engine', 'vad@1.0.0 failed to load', {
      cause: wasmMissing,
    });
    expect(classifyFailure(error, 'engine')).toBe('environment');
  });

  it('blames the environment for quota and network errors at any step', () => {
    const quota = new ActivationError('engine', 'failed to load', {
      cause: new QuotaError('storage quota exceeded'),
    });
    expect(classifyFailure(quota, 'engine')).toBe('environment');
    expect(classifyFailure(new NetworkError('offline'), 'health-check')).toBe('environment');
    expect(classifyFailure(new NotFoundError('chunk not stored'), 'read')).toBe('environment');
  });

  it('blames the model for stored bytes that fail their hash or length', () => {
    expect(classifyFailure(new HashMismatchError('no longer matches'), 'read')).toBe('model');
    expect(classifyFailure(new LengthMismatchError('short'), 'read')).toBe('model');
  });

  it('blames the model when every engine started and failed on it', () => {
    const garbage = new NoBackendError('onnx', [
      {
        config: { backend: 'wasm', threads: 2 },
        code: 'session-failed',
        reason: "wasm×2: Can't create a session. ERROR_CODE: 7, ERROR_MESSAGE: protobuf parsing failed.",
      },
    ]);
    expect(classifyFailure(garbage, 'engine')).toBe('model');
    const nonFinite = new NoBackendError('onnx', [
      { config: { backend: 'wasm', threads: 1 }, code: 'non-finite', reason: 'output "y" is not finite' },
    ]);
    expect(classifyFailure(nonFinite, 'engine')).toBe('model');
    expect(
      classifyFailure(new BackendUnavailableError('session-failed', 'protobuf parsing failed'), 'engine'),
    ).toBe('model');
  });

  it('blames the model for a health check that failed on a started engine', () => {
    const error = new ActivationError('health-check', 'produced non-finite values in output');
    expect(classifyFailure(error, 'health-check')).toBe('model');
  });
});
