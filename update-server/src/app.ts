import { NotFoundError } from '@edgeship/protocol';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { requestId } from 'hono/request-id';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Registry as PromRegistry } from 'prom-client';
import { createAuth } from './auth/middleware.ts';
import { TokenAdmin } from './auth/token-admin.ts';
import type { CanaryMonitor } from './canary/monitor.ts';
import { Experiments } from './experiment/experiments.ts';
import { NotReadyError } from './http/api-errors.ts';
import { chunkFastPath } from './http/chunk-fast-path.ts';
import { addressFrom, clientAddressResolver } from './http/client-address.ts';
import { DEVICE_HEADERS, EXPOSED_HEADERS } from './http/device-headers.ts';
import { type ManifestFastPathDeps, manifestFastPath, type NodeFastPath } from './http/manifest-fast-path.ts';
import { createHttpMetrics } from './http/metrics.ts';
import { rateLimit } from './http/rate-limit.ts';
import { renderError } from './http/render-error.ts';
import type { ServerLimiters } from './http/shared-limits.ts';
import { requireUtf8Bodies } from './http/utf8-body.ts';
import type { ServerKeys } from './keys/server-keys.ts';
import { ManifestCache } from './registry/manifest-cache.ts';
import type { RegistryService } from './registry/service.ts';
import { createAdminRoutes } from './routes/admin.ts';
import { documentDeviceRoutes } from './routes/device-routes.ts';
import { createExperimentRoutes } from './routes/experiments.ts';
import { createFleetRoutes } from './routes/fleet-routes.ts';
import { createPublicRoutes } from './routes/public.ts';
import { createReleaseDocumentRoutes } from './routes/release-documents.ts';
import { createTelemetryRoutes } from './routes/telemetry.ts';
import { createTokenRoutes } from './routes/tokens.ts';
import type { Database } from './storage/schema.ts';
import type { BlobStore, RegistryStore } from './storage/types.ts';
import type { TelemetryService } from './telemetry/service.ts';

export interface RateLimits {
  /** Per client address, on the public device routes. */
  publicPerMinute: number;
  /** Per token, on the admin routes. */
  adminPerMinute: number;
  /** Failed authentications per client address (then 429 until the minute is over); default 30. */
  authFailuresPerMinute?: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  publicPerMinute: 6000,
  adminPerMinute: 1200,
  authFailuresPerMinute: 30,
};

export interface AppDeps {
  registry: RegistryStore;
  blobs: BlobStore;
  service: RegistryService;
  keys: ServerKeys;
  log: Logger;
  rateLimits?: RateLimits;
  /** The limiters on a shared store (Redis, PostgreSQL); in memory per app when absent. */
  limiters?: ServerLimiters;
  /** Registers more metrics (leader, canary monitor) on the app's Prometheus registry. */
  attachMetrics?: (registry: PromRegistry) => void;
  /** Telemetry ingest (`POST /v1/telemetry`), the fleet API and per-release metrics. */
  telemetry?: TelemetryService;
  canary?: CanaryMonitor | null;
  /** The database the experiments table lives in (experiment/experiments.ts); no experiment routes without it. */
  db?: Kysely<Database>;
  /**
   * Proxies in front of the server whose X-Forwarded-For entries are trusted, counted from the
   * server (0: none, the default; X-Forwarded-For is then ignored). See http/client-address.ts.
   */
  trustProxy?: number;
  /** `/metrics` needs a token (any role: all read) when true; Prometheus sends it as a bearer. */
  metricsAuth?: boolean;
  /** Routes mounted by the host (telemetry ingest, dashboard, the demo PWA). */
  mount?: (app: Hono) => void;
}

export function createApp(deps: AppDeps): Hono {
  return createServedApp(deps).app;
}

/**
 * The app, and the node:http handler that answers fresh manifest checks and chunk downloads
 * before it (http/manifest-fast-path.ts, http/chunk-fast-path.ts), given the listener everything
 * else goes to: hosts on node:http (server.ts) put it in front; `app.request()` and other hosts
 * serve the same answers through Hono.
 */
export function createServedApp(deps: AppDeps): {
  app: Hono;
  fastPath: (fallback: ManifestFastPathDeps['fallback']) => NodeFastPath;
} {
  const { log } = deps;
  const limits = deps.rateLimits ?? DEFAULT_RATE_LIMITS;
  const metrics = createHttpMetrics();
  deps.telemetry?.attachMetrics(metrics.registry);
  deps.attachMetrics?.(metrics.registry);
  const app = new Hono();

  app.use(requestId());
  app.use(async (c, next) => {
    // Nothing to build when the level is off: this runs on every manifest check.
    if (!log.isLevelEnabled('info')) return next();
    const started = performance.now();
    await next();
    log.info(
      {
        reqId: c.get('requestId'),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round((performance.now() - started) * 10) / 10,
      },
      'request',
    );
  });
  app.use(metrics.middleware);
  app.onError((error, c) => renderError(error, c, log));
  app.notFound(() => {
    throw new NotFoundError('no such route');
  });

  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', async (c) => {
    // Ready means the database answers: a process that cannot read the registry must get no traffic.
    try {
      await deps.registry.listChannels();
      return c.json({ ok: true });
    } catch (error) {
      log.warn({ err: error }, 'not ready');
      throw new NotReadyError('the database does not answer');
    }
  });
  const clientAddress = clientAddressResolver(deps.trustProxy ?? 0);
  const requireRole = createAuth({
    registry: deps.registry,
    clientAddress,
    failuresPerMinute: limits.authFailuresPerMinute ?? DEFAULT_RATE_LIMITS.authFailuresPerMinute,
    failures: deps.limiters?.authFailures,
  });
  if (deps.metricsAuth) app.use('/metrics', requireRole('viewer'));
  app.get('/metrics', async (c) => {
    c.header('Content-Type', metrics.registry.contentType);
    return c.body(await metrics.registry.metrics());
  });

  app.use('/v1/*', deviceCors());
  // The telemetry route decodes its bytes with a fatal UTF-8 decoder itself (routes/telemetry.ts).
  app.use('/v1/*', requireUtf8Bodies({ skip: (path) => path === '/v1/telemetry' }));
  const publicLimit = rateLimit({
    points: limits.publicPerMinute,
    windowSec: 60,
    key: clientAddress,
    limiter: deps.limiters?.public,
  });
  const manifests = new ManifestCache(deps.registry, deps.service);
  app.use('/v1/apps/*', publicLimit);
  app.use('/v1/chunks/*', publicLimit);
  app.use('/v1/releases/*', publicLimit);
  app.use(
    '/v1/admin/*',
    rateLimit({
      points: limits.adminPerMinute,
      windowSec: 60,
      key: tokenKey(clientAddress),
      limiter: deps.limiters?.admin,
    }),
  );

  app.route('/v1', createPublicRoutes({ ...deps, manifests }));
  app.route('/v1', createReleaseDocumentRoutes(deps));
  const admin = createAdminRoutes({ ...deps, requireRole });
  admin.route('/', createTokenRoutes({ tokens: new TokenAdmin(deps.registry), requireRole }));
  if (deps.telemetry) {
    // Rate-limited per device and per address inside (not by publicLimit: many devices share a NAT).
    app.route(
      '/v1',
      createTelemetryRoutes({
        telemetry: deps.telemetry,
        clientAddress,
        deviceLimiter: deps.limiters?.telemetryDevice,
        addressLimiter: deps.limiters?.telemetryAddress,
      }),
    );
    admin.route(
      '/',
      createFleetRoutes({
        registry: deps.registry,
        telemetry: deps.telemetry,
        canary: deps.canary ?? null,
        requireRole,
      }),
    );
    if (deps.canary && deps.db) {
      const experiments = new Experiments({
        ...deps,
        db: deps.db,
        telemetry: deps.telemetry,
        canary: deps.canary,
      });
      deps.canary.addPass('experiments', async () => {
        await experiments.haltHarmful();
        await experiments.reallocate();
      });
      admin.route('/', createExperimentRoutes({ experiments, requireRole }));
    }
  }
  app.route('/v1/admin', admin);
  documentDeviceRoutes(admin, { telemetry: deps.telemetry !== undefined });
  const openApi = admin.getOpenAPIDocument({
    openapi: '3.0.3',
    info: {
      title: 'Edgeship update server',
      version: '1',
      license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
    },
    servers: [{ url: '/v1/admin' }],
  });
  app.get('/v1/openapi.json', (c) => c.json(openApi));

  deps.mount?.(app);
  const address = addressFrom(deps.trustProxy ?? 0);
  return {
    app,
    fastPath: (fallback) => {
      const shared = { limit: publicLimit, address, metrics, log, fallback };
      const manifest = manifestFastPath({ ...shared, manifests });
      const chunk = chunkFastPath({ ...shared, blobs: deps.blobs });
      return (req, res) => manifest(req, res) || chunk(req, res);
    },
  };
}

/**
 * Preflights go to Hono's cors(); on other requests the headers (http/device-headers.ts) are set
 * before the handler runs, as prepared headers: changing `c.res` afterwards (what cors() does)
 * makes @hono/node-server build a full Response for every request, a fifth of a manifest check's
 * cost.
 */
function deviceCors(): MiddlewareHandler {
  const preflight = cors({ origin: '*', exposeHeaders: EXPOSED_HEADERS });
  const headers = Object.entries(DEVICE_HEADERS);
  return async (c, next) => {
    if (c.req.method === 'OPTIONS') {
      c.header('Cross-Origin-Resource-Policy', DEVICE_HEADERS['Cross-Origin-Resource-Policy']);
      return preflight(c, next);
    }
    for (const [name, value] of headers) c.header(name, value);
    await next();
  };
}

/**
 * Rate-limit admin calls per token (by a suffix of it, never logged), else per address. A bogus
 * token gets a bucket of its own here, which is why failed attempts are limited per address in
 * auth/middleware.ts.
 */
function tokenKey(address: (c: Context) => string) {
  return (c: Context) => {
    const auth = c.req.header('authorization');
    return auth ? `token:${auth.slice(-24)}` : `addr:${address(c)}`;
  };
}
