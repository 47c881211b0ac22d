import type { MiddlewareHandler } from 'hono';
import { ApiError } from '../http/api-error.ts';
import type { Registry, Role, TokenRecord } from '../storage/types.ts';
import { allows, hashToken } from './tokens.ts';

export interface AuthVariables {
  token: TokenRecord;
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]{16,256})$/;

/** Bearer-token authentication with a role check; the token is looked up by its hash. */
export function requireRole(registry: Registry, role: Role, now: () => Date = () => new Date()) {
  const handler: MiddlewareHandler<{ Variables: AuthVariables }> = async (c, next) => {
    const header = c.req.header('authorization');
    const match = header ? BEARER.exec(header) : null;
    if (!match) {
      throw new ApiError(401, 'E_UNAUTHENTICATED', 'a bearer token is required', {
        'WWW-Authenticate': 'Bearer realm="edgeship"',
      });
    }
    const token = await registry.findTokenByHash(hashToken(match[1]!));
    const at = now().getTime();
    if (
      !token ||
      token.revokedAt !== null ||
      (token.expiresAt !== null && Date.parse(token.expiresAt) <= at)
    ) {
      throw new ApiError(401, 'E_UNAUTHENTICATED', 'the token is unknown, expired or revoked', {
        'WWW-Authenticate': 'Bearer realm="edgeship", error="invalid_token"',
      });
    }
    if (!allows(token.role, role)) {
      throw new ApiError(403, 'E_FORBIDDEN', `this needs the ${role} role; the token has ${token.role}`);
    }
    c.set('token', token);
    await next();
  };
  return handler;
}
