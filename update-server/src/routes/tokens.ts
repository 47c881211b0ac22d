import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { AuthVariables, RequireRole } from '../auth/middleware.ts';
import type { TokenAdmin } from '../auth/token-admin.ts';
import { ValidationError } from '../http/api-errors.ts';
import { describeIssues } from '../http/render-error.ts';
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
  /** Applied before the body is read (size limit). */
  jsonLimit: MiddlewareHandler;
}

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { 'application/json': { schema } },
  description,
});
const errors = {
  400: json(ErrorSchema, 'Bad input (E_BAD_JSON, E_VALIDATION)'),
  401: json(ErrorSchema, 'Missing, unknown, expired or revoked token'),
  403: json(ErrorSchema, 'The token is not an admin token'),
  429: json(ErrorSchema, 'Rate limited'),
};
const security = [{ bearer: [] }];

/** `/v1/admin/tokens` (admin role): create, list and revoke bearer tokens; each change is audited. */
export function createTokenRoutes(deps: TokenRouteDeps) {
  const app = new OpenAPIHono<{ Variables: AuthVariables }>({
    defaultHook: (result) => {
      if (!result.success) throw new ValidationError(describeIssues(result.error.issues));
    },
  });
  const admin = deps.requireRole('admin');
  const actor = (c: { get(key: 'token'): AuthVariables['token'] }) => ({ name: c.get('token').name });

  app.openapi(
    createRoute({
      method: 'post',
      path: '/tokens',
      summary: 'Create a token for a person or service; the answer is the only time it is shown',
      security,
      middleware: [admin, deps.jsonLimit] as const,
      request: {
        body: { content: { 'application/json': { schema: CreateTokenBodySchema } }, required: true },
      },
      responses: {
        201: json(CreatedTokenSchema, 'Created'),
        ...errors,
        413: json(ErrorSchema, 'Body too large'),
      },
    }),
    async (c) => {
      c.header('Cache-Control', 'no-store');
      return c.json(await deps.tokens.issue(actor(c), c.req.valid('json')), 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/tokens',
      summary: 'Every token, newest first, with its state (never the token or its hash)',
      security,
      middleware: [admin] as const,
      responses: { 200: json(z.object({ tokens: z.array(TokenSummarySchema) }), 'Tokens'), ...errors },
    }),
    async (c) => c.json({ tokens: await deps.tokens.list() }, 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/tokens/{id}/revoke',
      summary: 'Revoke a token: refused from the next request on',
      security,
      middleware: [admin] as const,
      request: { params: TokenIdParams },
      responses: {
        200: json(TokenSummarySchema, 'Revoked'),
        ...errors,
        404: json(ErrorSchema, 'No such token'),
        409: json(ErrorSchema, 'Revoked already, or the last active admin token'),
      },
    }),
    async (c) => c.json(await deps.tokens.revoke(actor(c), c.req.valid('param').id), 200),
  );
  return app;
}
