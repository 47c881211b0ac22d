import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { describe, expect, it } from 'vitest';
import { RateLimitedError } from './api-errors.ts';
import { MemoryRateLimiter, rateLimit } from './rate-limit.ts';

const refused = (p: Promise<unknown>) =>
  p.then(
    () => false,
    (error) => error instanceof RateLimiterRes,
  );

describe('the in-memory rate limiter', () => {
  it('answers take() at once, from the counters consume() uses', async () => {
    const limiter = new MemoryRateLimiter({ points: 3, duration: 60 });
    // A boolean, not a promise: the synchronous path runs on this rate-limiter-flexible.
    expect(limiter.take('10.0.0.1')).toBe(true);
    await limiter.consume('10.0.0.1');
    expect(limiter.take('10.0.0.1')).toBe(true);
    expect(limiter.take('10.0.0.1')).toBe(false);
    expect(await refused(limiter.consume('10.0.0.1'))).toBe(true);
    expect((await limiter.get('10.0.0.1'))?.consumedPoints).toBe(5);
    // Another client has its own bucket.
    expect(limiter.take('10.0.0.2')).toBe(true);
  });

  it('starts a client over when its window has passed', async () => {
    const limiter = new MemoryRateLimiter({ points: 1, duration: 1 });
    expect(limiter.take('a')).toBe(true);
    expect(limiter.take('a')).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(limiter.take('a')).toBe(true);
  });
});

describe('rateLimit', () => {
  it('gives the middleware and take() one bucket, and a 429 with Retry-After past it', async () => {
    const limit = rateLimit({ points: 2, windowSec: 60, key: () => 'k' });
    expect(limit.take('k')).toBe(true);
    await limit.consume('k');
    expect(limit.take('k')).toBe(false);
    const error = await limit.consume('k').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).message).toMatch(/retry in (59|60) s/);
  });

  it('answers take() with a promise on a limiter of another kind (a shared store)', async () => {
    const limit = rateLimit({
      points: 0,
      windowSec: 60,
      key: () => 'k',
      limiter: new RateLimiterMemory({ points: 1, duration: 60 }),
    });
    const first = limit.take('k');
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toBe(true);
    expect(await limit.take('k')).toBe(false);
  });
});
