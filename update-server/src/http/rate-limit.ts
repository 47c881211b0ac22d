import type { Context, MiddlewareHandler } from 'hono';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { rateLimited } from './api-errors.ts';

export interface RateLimitOptions {
  /** Requests allowed per window and key. */
  points: number;
  windowSec: number;
  /** Which client a request counts against (token, device id or address). */
  key: (c: Context) => string | Promise<string>;
}

/**
 * A token bucket per client. In memory, so each process limits on its own: behind a load
 * balancer with N processes a client gets up to N times the limit (rate-limiter-flexible has
 * Redis and PostgreSQL stores for a shared limit; see ARCHITECTURE.md).
 */
export function rateLimit(opts: RateLimitOptions): MiddlewareHandler {
  const limiter = new RateLimiterMemory({ points: opts.points, duration: opts.windowSec });
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
