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

/**
 * A fixed-window budget per client. In memory unless given a shared limiter: behind a load
 * balancer with N processes, in-memory limits give a client up to N times the limit, shared ones
 * (Redis, PostgreSQL: http/shared-limits.ts) the limit once.
 */
export function rateLimit(opts: RateLimitOptions): RateLimitMiddleware {
  const limiter = opts.limiter ?? new RateLimiterMemory({ points: opts.points, duration: opts.windowSec });
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
  return Object.assign(middleware, { consume });
}

/** The middleware, and the same bucket for a path that runs outside Hono (http/manifest-fast-path.ts). */
export type RateLimitMiddleware = MiddlewareHandler & {
  /** Takes one point for `key`; rejects with 429 E_RATE_LIMITED when its bucket is empty. */
  consume(key: string): Promise<void>;
};
