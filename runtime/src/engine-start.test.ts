import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ENGINE_START_BOUND,
  EngineStartTimeoutError,
  engineStartLimitMs,
  RESTARTED_BOUND_FACTOR,
} from './engine-start.ts';

describe('engine start bound', () => {
  it('grows with the release bytes from its base', () => {
    expect(engineStartLimitMs(0)).toBe(DEFAULT_ENGINE_START_BOUND.baseMs);
    expect(engineStartLimitMs(100 * 2 ** 20)).toBe(DEFAULT_ENGINE_START_BOUND.baseMs + 100_000);
    expect(engineStartLimitMs(2 ** 19, { baseMs: 1_000, msPerMiB: 2_000 })).toBe(2_000);
  });

  it('is four times as long in the worker that replaced a timed-out one', () => {
    const bound = { baseMs: 1_000, msPerMiB: 2_000 };
    expect(engineStartLimitMs(2 ** 19, bound, true)).toBe(RESTARTED_BOUND_FACTOR * 2_000);
    expect(RESTARTED_BOUND_FACTOR).toBe(4);
  });

  it('is a TimeoutError with code E_TIMEOUT and phase engine-start', () => {
    const error = new EngineStartTimeoutError('vad', 'vad@1.0.0', 47_000, true);
    expect(error.code).toBe('E_TIMEOUT');
    expect(error.phase).toBe('engine-start');
    expect(error.message).toContain('vad@1.0.0');
    expect(error.message).toContain('47000 ms');
    expect(error.message).toContain('restarted worker');
  });
});
