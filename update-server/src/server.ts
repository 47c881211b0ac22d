import { mkdir } from 'node:fs/promises';
import { createServer, type RequestListener, type ServerOptions as ServerOptions_ } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TrustedRoot } from '@edgeship/protocol';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import type { DestinationStream, Level, Logger } from 'pino';
import { createServedApp, DEFAULT_RATE_LIMITS, type RateLimits } from './app.ts';
import { type BootstrapTokens, bootstrapTokens, tokenState } from './auth/tokens.ts';
import { CanaryMonitor, type CanaryOptions } from './canary/monitor.ts';
import { DEFAULT_LEADER_INTERVAL_MS, LeaderElection, type LeaderTask } from './cluster/leader.ts';
import { clientAddressResolver } from './http/client-address.ts';
import { createServerLimiters, type LimitStoreOptions, openLimiterStore } from './http/shared-limits.ts';
import { loadServerKeys, type ServerKeys } from './keys/server-keys.ts';
import { createLogger } from './log.ts';
import { DEFAULT_RESIGN_INTERVAL_MS, ManifestResigner } from './registry/resigner.ts';
import { RegistryService } from './registry/service.ts';
import { openStorage } from './storage/open.ts';
import type { BlobStore, RegistryStore } from './storage/types.ts';
import { retentionPolicy } from './telemetry/retention.ts';
import { DEFAULT_TELEMETRY_OPTIONS, type TelemetryOptions, TelemetryService } from './telemetry/service.ts';

export interface ServerOptions {
  /** Where the SQLite file, blobs, keys and bootstrap tokens live. */
  dataDir: string;
  /** PostgreSQL connection string: registry and blobs in PostgreSQL instead. */
  databaseUrl?: string;
  port?: number;
  host?: string;
  /** Keys directory (defaults to <dataDir>/keys). */
  keysDir?: string;
  /** Create a development trust chain when the keys directory is empty. */
  createKeys?: boolean;
  manifestTtlMs?: number;
  logLevel?: Level | 'silent';
  /** Where the server's own logger writes (default stdout); secrets are redacted (log.ts). */
  logStream?: DestinationStream;
  /** A logger of the host's instead (it should redact as log.ts does). */
  logger?: Logger;
  rateLimits?: RateLimits;
  /**
   * Where rate-limit counters live (http/shared-limits.ts): in memory (default; one process) or
   * shared by every process through Redis or the PostgreSQL database.
   */
  rateLimitStore?: Omit<LimitStoreOptions, 'databaseUrl'>;
  /**
   * How often a process tries to become the leader (PostgreSQL advisory lock), which alone runs
   * the canary monitor, the telemetry pruner and manifest re-signing (cluster/leader.ts).
   */
  leaderIntervalMs?: number;
  /** How often the leader re-signs manifests nearing expiry (0: only on request). */
  resignIntervalMs?: number;
  /** Proxy hops whose X-Forwarded-For entries are trusted (0, the default: none). */
  trustProxy?: number;
  /** Require a token (any role) on `/metrics`. */
  metricsAuth?: boolean;
  /** Called (POST, JSON) when the canary analysis halts a rollout, or a production alert fires or resolves; retried. */
  webhookUrl?: string;
  telemetry?: TelemetryOptions;
  /**
   * Days telemetry batch ids (the idempotency keys) and per-device rows are kept; default 30,
   * at least 10 since it must outlast the runtime's outbox (7 days) plus clock skew: see
   * telemetry/retention.ts. Older batches are refused (422 E_TOO_OLD), so none is counted twice.
   */
  telemetryRetentionDays?: number;
  /** Days the per-release aggregates (fleet view, canary) are kept; default 90, ≥ the above. */
  telemetryAggregateRetentionDays?: number;
  /** The clock of telemetry windows, batch-time checks and pruning (tests move it). */
  telemetryClock?: () => Date;
  /** Canary analysis: policy margins, timer interval, throttle after ingest. */
  canary?: Omit<CanaryOptions, 'webhookUrl'> & { enabled?: boolean };
  mount?: (app: Hono, ctx: ServerContext) => void;
}

export interface ServerContext {
  registry: RegistryStore;
  blobs: BlobStore;
  service: RegistryService;
  keys: ServerKeys;
  log: Logger;
  telemetry: TelemetryService;
  canary: CanaryMonitor | null;
  /** Whether this process runs the cluster-wide tasks (always, on SQLite). */
  leader: LeaderElection;
}

export interface RunningServer extends ServerContext {
  url: string;
  /** The Hono app the HTTP server serves (tests call `app.request()` on it). */
  app: Hono;
  trustedRoot: TrustedRoot;
  /** The bootstrap tokens, when their file is still in the data directory. */
  tokens: BootstrapTokens | null;
  close(): Promise<void>;
}

export const DEFAULT_MANIFEST_TTL_MS = 7 * 86_400_000;

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const log = opts.logger ?? createLogger(opts.logLevel ?? 'info', opts.logStream);
  // Checked before anything is opened: a retention too short for the outbox is a start-up error.
  const retention = retentionPolicy(
    { days: opts.telemetryRetentionDays, aggregateDays: opts.telemetryAggregateRetentionDays },
    opts.telemetry?.windowSec ?? DEFAULT_TELEMETRY_OPTIONS.windowSec,
  );
  clientAddressResolver(opts.trustProxy ?? 0); // a bad hop count is a start-up error, before any I/O
  await mkdir(opts.dataDir, { recursive: true });
  const keys = await loadServerKeys(opts.keysDir ?? join(opts.dataDir, 'keys'), {
    createIfMissing: opts.createKeys ?? !opts.databaseUrl,
  });
  if (keys.created)
    log.warn({ keysDir: opts.keysDir ?? join(opts.dataDir, 'keys') }, 'created a development trust chain');
  const { registry, blobs, db, dialect } = await openStorage({
    dataDir: opts.dataDir,
    databaseUrl: opts.databaseUrl,
    log: (msg) => log.info(msg),
  });
  const tokens = await bootstrapTokens(registry, join(opts.dataDir, 'tokens.json'));
  const bootstrapActive = (await registry.listTokens())
    .filter((t) => t.id.startsWith('bootstrap-') && tokenState(t, new Date()) === 'active')
    .map((t) => t.name);
  if (bootstrapActive.length > 0) {
    // They never expire and name nobody in the audit trail: fine for development only.
    log.warn(
      { bootstrapTokens: bootstrapActive },
      'bootstrap tokens are active: create per-person tokens (edgeship token create) and revoke these',
    );
  }
  const service = new RegistryService(registry, blobs, {
    online: keys.online,
    keySet: keys.keySet,
    ttlMs: opts.manifestTtlMs ?? DEFAULT_MANIFEST_TTL_MS,
  });
  const telemetry = new TelemetryService({
    db,
    dialect,
    registry,
    log,
    options: opts.telemetry,
    retention,
    now: opts.telemetryClock,
  });
  const canary =
    opts.canary?.enabled === false
      ? null
      : new CanaryMonitor({
          db,
          registry,
          service,
          telemetry,
          log,
          options: { ...opts.canary, webhookUrl: opts.webhookUrl },
        });
  if (canary) {
    telemetry.onCommit((trx, accepted, at, prefetched) =>
      canary.evidence.record(trx, accepted, at, prefetched),
    );
    telemetry.onAccepted(() => canary.notify());
  }
  const resigner = new ManifestResigner(registry, service, log, {
    intervalMs: opts.resignIntervalMs ?? DEFAULT_RESIGN_INTERVAL_MS,
  });
  const tasks: LeaderTask[] = [telemetry.pruner, resigner, ...(canary ? [canary] : [])];
  const leader = new LeaderElection({
    databaseUrl: opts.databaseUrl,
    intervalMs: opts.leaderIntervalMs ?? DEFAULT_LEADER_INTERVAL_MS,
    log,
    tasks,
  });
  const limits = { ...DEFAULT_RATE_LIMITS, ...opts.rateLimits };
  const limiterStore = await openLimiterStore({
    kind: 'memory',
    ...opts.rateLimitStore,
    databaseUrl: opts.databaseUrl,
  });
  const limiters = await createServerLimiters(limiterStore, {
    public: limits.publicPerMinute,
    admin: limits.adminPerMinute,
    authFailures: limits.authFailuresPerMinute ?? DEFAULT_RATE_LIMITS.authFailuresPerMinute!,
    telemetryDevice: telemetry.options.perDevicePerMinute,
    telemetryAddress: telemetry.options.perAddressPerMinute,
  });
  await leader.start();
  const ctx: ServerContext = { registry, blobs, service, keys, log, telemetry, canary, leader };
  const { app, fastPath } = createServedApp({
    ...ctx,
    db,
    rateLimits: limits,
    limiters,
    attachMetrics: (metrics) => {
      leader.attachMetrics(metrics);
      canary?.attachMetrics(metrics);
    },
    trustProxy: opts.trustProxy,
    metricsAuth: opts.metricsAuth,
    mount: (a) => opts.mount?.(a, ctx),
  });

  const server = serve({
    fetch: app.fetch,
    port: opts.port ?? 0,
    hostname: opts.host ?? '127.0.0.1',
    // Fresh manifest checks and chunk downloads are answered before Hono (http/*-fast-path.ts).
    createServer: ((options: ServerOptions_, listener: RequestListener) => {
      const fast = fastPath(listener);
      return createServer(options, (req, res) => fast(req, res) || listener(req, res));
    }) as typeof createServer,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  log.info({ url }, 'update server listening');

  let closing: Promise<void> | null = null;
  return {
    ...ctx,
    url,
    app,
    trustedRoot: keys.trustedRoot,
    tokens,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Keep-alive connections would hold close() open; in-flight requests finish first.
          (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        });
        // Acknowledged batches are committed already; these wait for work under way to finish.
        // Pauses the leader's tasks and frees the lock, so another process leads at its next try.
        await leader.stop();
        await canary?.stop();
        await telemetry.pruner.stop();
        await limiterStore.close();
        await telemetry.drain();
        await registry.close();
        await blobs.close();
      })();
      return closing;
    },
  };
}
