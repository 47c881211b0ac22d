import { z } from '@hono/zod-openapi';
import type { RequireRole } from '../auth/middleware.ts';
import type { TokenAdmin } from '../auth/token-admin.ts';
import { actor, adminRoutes, json, jsonBody } from './admin-route.ts';
import {
  CreatedTokenSchema,
  CreateTokenBodySchema,
  ErrorSchema,
  TokenIdParams,
  TokenSummarySchema,
} from './api-schemas.ts';

export interface TokenRouteDeps {
  tokens: TokenAdmin;
  requireRole: RequireRole;
}

const notAdmin = { 403: json(ErrorSchema, 'The token is not an admin token') };

/** `/v1/admin/tokens` (admin role): create, list and revoke bearer tokens; each change is audited. */
export function createTokenRoutes(deps: TokenRouteDeps) {
  const { app, route } = adminRoutes(deps);

  route('post', '/tokens', 'createToken', 'admin', {
    summary: 'Create a token for a person or service; the answer is the only time it is shown',
    request: jsonBody(CreateTokenBodySchema),
    responses: { 201: json(CreatedTokenSchema, 'Created'), ...notAdmin },
    handler: async (c) => {
      c.header('Cache-Control', 'no-store');
      return c.json(await deps.tokens.issue(actor(c), c.req.valid('json')), 201);
    },
  });

  route('get', '/tokens', 'listTokens', 'admin', {
    summary: 'Every token, newest first, with its state (never the token or its hash)',
    responses: { 200: json(z.object({ tokens: z.array(TokenSummarySchema) }), 'Tokens'), ...notAdmin },
    handler: async (c) => c.json({ tokens: await deps.tokens.list() }, 200),
  });

  route('post', '/tokens/{id}/revoke', 'revokeToken', 'admin', {
    summary: 'Revoke a token: refused from the next request on',
    request: { params: TokenIdParams },
    responses: {
      200: json(TokenSummarySchema, 'Revoked'),
      ...notAdmin,
      404: json(ErrorSchema, 'No such token'),
      409: json(ErrorSchema, 'Revoked already, or the last active admin token'),
    },
    handler: async (c) => c.json(await deps.tokens.revoke(actor(c), c.req.valid('param').id), 200),
  });
  return app;
}
