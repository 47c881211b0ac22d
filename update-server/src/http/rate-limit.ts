import type { Context, MiddlewareHandler } from 'hono';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { ApiError } from './api-error.ts';

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
export function rateLimit(opts: RateLimitOptions): RateLimitMiddleware {
  const limiter = new RateLimiterMemory({ points: opts.points, duration: opts.windowSec });
  const consume = async (key: string) => {
    try {
      await limiter.consume(key);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      const retryAfter = Math.max(1, Math.ceil(error.msBeforeNext / 1000));
      throw new ApiError(429, 'E_RATE_LIMITED', `too many requests; retry in ${retryAfter} s`, {
        'Retry-After': String(retryAfter),
      });
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
