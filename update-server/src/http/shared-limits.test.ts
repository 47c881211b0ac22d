import { randomBytes } from 'node:crypto';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { afterAll, describe, expect, it } from 'vitest';
import { type LimiterStore, openLimiterStore } from './shared-limits.ts';

/** Real Redis on loopback (the machine's, as in production): two stores stand for two processes. */
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const opened: LimiterStore[] = [];

async function open(kind: 'memory' | 'redis', keyPrefix: string): Promise<LimiterStore> {
  const store = await openLimiterStore({ kind, redisUrl: REDIS_URL, keyPrefix });
  opened.push(store);
  return store;
}

afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
});

async function consumed(limiter: { consume(key: string): Promise<unknown> }, key: string): Promise<boolean> {
  try {
    await limiter.consume(key);
    return true;
  } catch (error) {
    if (error instanceof RateLimiterRes) return false;
    throw error;
  }
}

describe('shared rate limits', () => {
  it('on Redis: what one process used, the other cannot use again', async () => {
    const prefix = `edgeship-test-${randomBytes(6).toString('hex')}`;
    const [one, two] = await Promise.all([open('redis', prefix), open('redis', prefix)]);
    const [a, b] = await Promise.all([one.limiter('public', 3, 60), two.limiter('public', 3, 60)]);
    expect([
      await consumed(a, '10.0.0.1'),
      await consumed(b, '10.0.0.1'),
      await consumed(a, '10.0.0.1'),
    ]).toEqual([true, true, true]);
    expect(await consumed(b, '10.0.0.1')).toBe(false);
    expect(await consumed(a, '10.0.0.1')).toBe(false);
    // Another client has its own budget; another limiter name is another namespace.
    expect(await consumed(b, '10.0.0.2')).toBe(true);
    expect(await consumed(await two.limiter('admin', 3, 60), '10.0.0.1')).toBe(true);
  });

  it('on Redis: deployments with different prefixes keep apart', async () => {
    const [x, y] = await Promise.all([
      open('redis', `edgeship-test-${randomBytes(6).toString('hex')}`),
      open('redis', `edgeship-test-${randomBytes(6).toString('hex')}`),
    ]);
    const lx = await x.limiter('public', 1, 60);
    const ly = await y.limiter('public', 1, 60);
    expect(await consumed(lx, 'k')).toBe(true);
    expect(await consumed(ly, 'k')).toBe(true);
    expect(await consumed(lx, 'k')).toBe(false);
  });

  it('in memory: each process counts alone (why one process only)', async () => {
    const [one, two] = await Promise.all([open('memory', 'p'), open('memory', 'p')]);
    const [a, b] = await Promise.all([one.limiter('public', 1, 60), two.limiter('public', 1, 60)]);
    expect(await consumed(a, 'k')).toBe(true);
    expect(await consumed(b, 'k')).toBe(true);
    expect(await consumed(a, 'k')).toBe(false);
  });

  it('refuses to start on an unreachable Redis, or without a URL or database', async () => {
    await expect(openLimiterStore({ kind: 'redis', redisUrl: 'redis://127.0.0.1:1' })).rejects.toThrow(
      /cannot reach Redis/,
    );
    await expect(openLimiterStore({ kind: 'redis' })).rejects.toThrow(/--redis-url/);
    await expect(openLimiterStore({ kind: 'postgres' })).rejects.toThrow(/--database-url/);
  });
});
