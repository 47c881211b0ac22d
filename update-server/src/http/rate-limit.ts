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
export function rateLimit(opts: RateLimitOptions): MiddlewareHandler {
  const limiter = opts.limiter ?? new RateLimiterMemory({ points: opts.points, duration: opts.windowSec });
  return async (c, next) => {
    try {
      await limiter.consume(await opts.key(c));
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      const retryAfter = Math.max(1, Math.ceil(error.msBeforeNext / 1000));
      throw rateLimited('too many requests', retryAfter);
    }
    await next();
  };
}
