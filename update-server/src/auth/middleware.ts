import { ForbiddenError, UnauthenticatedError } from '@edgeship/protocol';
import type { Context, MiddlewareHandler } from 'hono';
import { type RateLimiterAbstract, RateLimiterMemory } from 'rate-limiter-flexible';
import { rateLimited, withHeaders } from '../http/api-errors.ts';
import type { Registry, Role, TokenRecord } from '../storage/types.ts';
import { allows, hashToken, tokenState } from './tokens.ts';

export interface AuthVariables {
  token: TokenRecord;
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]{16,256})$/;

export interface AuthOptions {
  registry: Registry;
  /** Which address a failed attempt counts against (see http/client-address.ts). */
  clientAddress: (c: Context) => string;
  /** Failed authentications per address and minute before the address is refused (429). */
  failuresPerMinute?: number;
  /** The failure counter on a shared store (http/shared-limits.ts), so every process sees each failure. */
  failures?: RateLimiterAbstract;
  now?: () => Date;
}

export const DEFAULT_AUTH_FAILURES_PER_MINUTE = 30;

export type RequireRole = (role: Role) => MiddlewareHandler<{ Variables: AuthVariables }>;

/**
 * Bearer-token authentication with a role check; the token is looked up by its hash. Failed
 * attempts are counted per client address, and an address over the limit gets 429 before any
 * token it sends is looked up: guessing costs the guesser, not the database, and a limited
 * address learns nothing about the tokens it tries.
 */
export function createAuth(opts: AuthOptions): RequireRole {
  const now = opts.now ?? (() => new Date());
  const failures =
    opts.failures ??
    new RateLimiterMemory({
      points: opts.failuresPerMinute ?? DEFAULT_AUTH_FAILURES_PER_MINUTE,
      duration: 60,
    });
  const allowed = failures.points;
  const refuseIfLimited = async (address: string) => {
    const state = await failures.get(address);
    if (state && state.consumedPoints >= allowed) throw tooManyFailures(state.msBeforeNext);
  };
  const unauthenticated = async (address: string, error: UnauthenticatedError): Promise<never> => {
    await failures.penalty(address, 1);
    throw error;
  };

  return (role) => async (c, next) => {
    const address = opts.clientAddress(c);
    await refuseIfLimited(address);
    const header = c.req.header('authorization');
    const match = header ? BEARER.exec(header) : null;
    if (!match) {
      return unauthenticated(
        address,
        withHeaders(new UnauthenticatedError('a bearer token is required'), {
          'WWW-Authenticate': 'Bearer realm="edgeship"',
        }),
      );
    }
    const token = await opts.registry.findTokenByHash(hashToken(match[1]!));
    if (!token || tokenState(token, now()) !== 'active') {
      return unauthenticated(
        address,
        withHeaders(new UnauthenticatedError('the token is unknown, expired or revoked'), {
          'WWW-Authenticate': 'Bearer realm="edgeship", error="invalid_token"',
        }),
      );
    }
    if (!allows(token.role, role)) {
      throw new ForbiddenError(`this needs the ${role} role; the token has ${token.role}`);
    }
    c.set('token', token);
    await next();
  };
}

function tooManyFailures(msBeforeNext: number) {
  const retryAfter = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return rateLimited('too many failed authentications from this address', retryAfter);
}
