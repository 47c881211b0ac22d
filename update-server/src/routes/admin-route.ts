import { createRoute, OpenAPIHono, type OpenAPIRoute, type RouteConfig, type z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { AuthVariables, RequireRole } from '../auth/middleware.ts';
import type { CanaryMonitor } from '../canary/monitor.ts';
import { NotReadyError, ValidationError } from '../http/api-errors.ts';
import { limitBody } from '../http/body-limit.ts';
import { describeIssues } from '../http/render-error.ts';
import type { RegistryService } from '../registry/service.ts';
import type { BlobStore, RegistryStore, Role } from '../storage/types.ts';
import { ErrorSchema, MAX_JSON_BODY } from './api-schemas.ts';

/** What the admin route modules are built from (each takes the parts it uses). */
export interface AdminDeps {
  registry: RegistryStore;
  blobs: BlobStore;
  service: RegistryService;
  /** One authenticator for every admin route, so failed attempts are counted together. */
  requireRole: RequireRole;
  /** Production alerts and rollout schedules run in it (absent or null: those routes answer E_NOT_READY). */
  canary?: CanaryMonitor | null;
}

/** What an admin handler sees: the authenticated token, set by the role check. */
export type AdminEnv = { Variables: AuthVariables };

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { 'application/json': { schema } },
  description,
});

export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  body: { content: { 'application/json': { schema } }, required: true },
});

/** The errors any admin route can answer; a route overrides one to say more. */
const ADMIN_ERRORS = {
  400: json(ErrorSchema, 'Bad input (E_BAD_JSON, E_VALIDATION)'),
  401: json(ErrorSchema, 'Missing, unknown, expired or revoked token'),
  403: json(ErrorSchema, 'The token lacks the role'),
  404: json(ErrorSchema, 'No such resource'),
  409: json(ErrorSchema, 'Conflicts with the current state'),
  413: json(ErrorSchema, 'Body too large'),
  429: json(ErrorSchema, 'Rate limited'),
};

const BEARER = [{ bearer: [] }];

/** The answer of a route served by the canary monitor when it is disabled. */
export const MONITOR_DISABLED = { 503: json(ErrorSchema, 'The canary monitor is disabled (E_NOT_READY)') };

/** `part` of the canary monitor (`what` it serves), or E_NOT_READY when the monitor is disabled. */
export function monitorPart<T>(part: T | null, what: string): T {
  if (!part) throw new NotReadyError(`${what} need the canary monitor, which is disabled`);
  return part;
}

/** Who the audit trail names for what this request does. */
export const actor = (c: { get(key: 'token'): AuthVariables['token'] }) => ({ name: c.get('token').name });

type Request = NonNullable<RouteConfig['request']>;
type Responses = RouteConfig['responses'];

/** What `route(method, path, operationId, role, config)` makes: its handler is typed from it. */
type AdminRoute<M extends RouteConfig['method'], P extends string, Q extends Request, A extends Responses> = {
  method: M;
  path: P;
  request: Q;
  responses: typeof ADMIN_ERRORS & A;
  operationId: string;
  middleware: MiddlewareHandler[];
};

export interface AdminRouteConfig
  extends Omit<RouteConfig, 'security' | 'middleware' | 'operationId' | 'method' | 'path'> {
  /** Bytes a body may have, checked before it is read (default MAX_JSON_BODY; only routes with a body). */
  maxBody?: number;
}

/**
 * One admin route module's app and route helper. `route(method, path, operationId, role, config)`
 * names the call as a generated client does (admin-client.ts uses these) and the least role that
 * may make it, and serves it on the app with `config.handler`. Every route it makes is
 * bearer-secured, checks its role before anything else is read, bounds its body before reading
 * it, documents the admin errors, and answers a schema failure with the documented 400 (the
 * first issues spelled out).
 */
export function adminRoutes({ requireRole }: Pick<AdminDeps, 'requireRole'>) {
  const app = new OpenAPIHono<AdminEnv>({
    defaultHook: (result) => {
      if (!result.success) throw new ValidationError(describeIssues(result.error.issues));
    },
  });
  const route = <
    const M extends RouteConfig['method'],
    const P extends string,
    const Q extends Request,
    const A extends Responses,
  >(
    method: M,
    path: P,
    operationId: string,
    role: Role,
    // request and responses first: the handler's type is inferred from them.
    config: Omit<AdminRouteConfig, 'request' | 'responses'> & {
      request?: Q;
      responses: A;
      handler: OpenAPIRoute<AdminRoute<M, P, Q, A>, AdminEnv>['handler'];
    },
  ): void => {
    const { maxBody, handler, ...rest } = config;
    const middleware: MiddlewareHandler[] = [requireRole(role)];
    if (rest.request?.body) middleware.push(limitBody(maxBody ?? MAX_JSON_BODY));
    const responses = { ...ADMIN_ERRORS, ...rest.responses };
    const made = createRoute({ ...rest, method, path, operationId, security: BEARER, middleware, responses });
    // The handler was checked against AdminRoute, the type of what createRoute makes here.
    app.openapi(made, handler as never);
  };
  return { app, route };
}
