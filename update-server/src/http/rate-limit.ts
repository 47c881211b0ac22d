import type { Context, MiddlewareHandler } from 'hono';
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { rateLimited } from './api-errors.ts';

export interface RateLimitOptions {
  /** Requests allowed per window and key. */
  points: number;
  windowSec: number;
  /** Which client a request counts against (token, device id or address). */
  key: (c: Context) => string | Promise<string>;
  /** A limiter on a shared store (http/shared-limits.ts); points and windowSec are then its own. */
  limiter?: RateLimiterAbstract;
}

/** What RateLimiterMemory counts in (rate-limiter-flexible 11.4.0, lib/component/MemoryStorage). */
interface MemoryStorage {
  incrby(key: string, value: number, durationSec: number): { consumedPoints: number };
}

/**
 * rate-limiter-flexible's in-memory limiter, and the same counters read synchronously. consume()
 * wraps one Map update in a promise; on a manifest check that promise and the tick it costs were
 * a tenth of the answer. `take` does what consume() does for one point (it has no block duration
 * and no execEvenly to apply: this class sets neither) and says at once whether it was left.
 */
export class MemoryRateLimiter extends RateLimiterMemory {
  private readonly storage: MemoryStorage | undefined;

  constructor(opts: { points: number; duration: number }) {
    super(opts);
    const storage = (this as unknown as { _memoryStorage?: MemoryStorage })._memoryStorage;
    // A later rate-limiter-flexible may keep its counters elsewhere: then `take` answers through
    // consume(), still right, only slower (rate-limit.test.ts says which path runs).
    this.storage = typeof storage?.incrby === 'function' ? storage : undefined;
  }

  /** Takes one point for `key`: whether it was left, at once when the counters are readable. */
  take(key: string): boolean | Promise<boolean> {
    if (!this.storage) return this.consume(key).then(taken, refused);
    return this.storage.incrby(this.getKey(key), 1, this.duration).consumedPoints <= this.points;
  }
}

const taken = () => true;
const refused = (error: unknown) => {
  if (error instanceof RateLimiterRes) return false;
  throw error;
};

/**
 * A fixed-window budget per client. In memory unless given a shared limiter: behind a load
 * balancer with N processes, in-memory limits give a client up to N times the limit, shared ones
 * (Redis, PostgreSQL: http/shared-limits.ts) the limit once.
 */
export function rateLimit(opts: RateLimitOptions): RateLimitMiddleware {
  const limiter = opts.limiter ?? new MemoryRateLimiter({ points: opts.points, duration: opts.windowSec });
  const consume = async (key: string) => {
    try {
      await limiter.consume(key);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      const retryAfter = Math.max(1, Math.ceil(error.msBeforeNext / 1000));
      throw rateLimited('too many requests', retryAfter);
    }
  };
  const middleware: MiddlewareHandler = async (c, next) => {
    await consume(await opts.key(c));
    await next();
  };
  const take =
    limiter instanceof MemoryRateLimiter
      ? (key: string) => limiter.take(key)
      : (key: string) => limiter.consume(key).then(taken, refused);
  return Object.assign(middleware, { consume, take });
}

/** The middleware, and the same bucket for a path that runs outside Hono (http/manifest-fast-path.ts). */
export type RateLimitMiddleware = MiddlewareHandler & {
  /** Takes one point for `key`; rejects with 429 E_RATE_LIMITED when its bucket is empty. */
  consume(key: string): Promise<void>;
  /**
   * Takes one point for `key` from the same bucket: whether one was left (no 429 built), at once
   * for an in-memory bucket, as a promise for a shared one (rejected when the store fails).
   */
  take(key: string): boolean | Promise<boolean>;
};
