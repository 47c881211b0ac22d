import { Redis } from 'ioredis';
import pg from 'pg';
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterPostgres,
  RateLimiterRedis,
} from 'rate-limiter-flexible';
import { MemoryRateLimiter } from './rate-limit.ts';

export type LimitStoreKind = 'memory' | 'redis' | 'postgres';
export const LIMIT_STORE_KINDS: readonly LimitStoreKind[] = ['memory', 'redis', 'postgres'];

export interface LimitStoreOptions {
  /**
   * Where counters live: `memory` (each process counts alone: one process only), `redis`, or
   * `postgres` (the registry's database; one write per limited request).
   */
  kind: LimitStoreKind;
  /** redis://… (kind `redis`). */
  redisUrl?: string;
  /** PostgreSQL connection string (kind `postgres`; the server passes its database's). */
  databaseUrl?: string;
  /** Prefix of every key, so deployments sharing one Redis keep apart (default `edgeship`). */
  keyPrefix?: string;
}

/** Makes the limiters of one server, all on one store. */
export interface LimiterStore {
  readonly kind: LimitStoreKind;
  /** A limiter of `points` per `durationSec` under its own `name` (a key namespace). */
  limiter(name: string, points: number, durationSec: number): Promise<RateLimiterAbstract>;
  close(): Promise<void>;
}

const PG_TABLE = 'rate_limits';
const PG_POOL_SIZE = 4;

/**
 * Rate-limit counters shared by every process of a deployment, through rate-limiter-flexible's
 * Redis or PostgreSQL store, so N processes behind a load balancer give a client the limit once,
 * not N times. Each shared limiter is insured by an in-memory one: when the store fails the
 * process limits on its own (a client may then get up to N times the limit) rather than refuse
 * every request or let them all through.
 */
export async function openLimiterStore(opts: LimitStoreOptions): Promise<LimiterStore> {
  const prefix = opts.keyPrefix ?? 'edgeship';
  if (opts.kind === 'memory') {
    return {
      kind: 'memory',
      limiter: async (_name, points, duration) => new MemoryRateLimiter({ points, duration }),
      close: async () => {},
    };
  }
  if (opts.kind === 'redis') {
    if (!opts.redisUrl) throw new Error('the redis rate-limit store needs a Redis URL (--redis-url)');
    // No offline queue: while Redis is away a call fails at once and the insurance limiter answers.
    const client = new Redis(opts.redisUrl, {
      enableOfflineQueue: false,
      lazyConnect: true,
      maxRetriesPerRequest: 1,
    });
    client.on('error', () => {}); // reconnects on its own; failures show up as insured calls
    try {
      await client.connect();
    } catch (error) {
      client.disconnect();
      throw new Error(`rate limits: cannot reach Redis at ${redactUrl(opts.redisUrl)}`, { cause: error });
    }
    return {
      kind: 'redis',
      limiter: async (name, points, duration) =>
        new RateLimiterRedis({
          storeClient: client,
          keyPrefix: `${prefix}:${name}`,
          points,
          duration,
          insuranceLimiter: new RateLimiterMemory({ points, duration }),
        }),
      close: async () => {
        await client.quit().catch(() => client.disconnect());
      },
    };
  }
  if (!opts.databaseUrl)
    throw new Error('the postgres rate-limit store needs a PostgreSQL database (--database-url)');
  const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: PG_POOL_SIZE });
  pool.on('error', () => {}); // a dropped idle client is replaced by the pool
  let tableReady: Promise<void> | null = null;
  return {
    kind: 'postgres',
    async limiter(name, points, duration) {
      const make = (tableCreated: boolean): Promise<RateLimiterPostgres> => {
        let settle: (error?: Error) => void = () => {};
        const ready = new Promise<void>((resolve, reject) => {
          settle = (error) => (error ? reject(error) : resolve());
        });
        // The callback says the table is there; with tableCreated it fires inside the constructor.
        const limiter = new RateLimiterPostgres(
          {
            storeClient: pool,
            storeType: 'pool',
            tableName: PG_TABLE,
            tableCreated,
            clearExpiredByTimeout: true,
            keyPrefix: `${prefix}:${name}`,
            points,
            duration,
            insuranceLimiter: new RateLimiterMemory({ points, duration }),
          },
          (error) => settle(error),
        );
        return ready.then(() => limiter);
      };
      if (!tableReady) {
        // Two processes starting at once may race on CREATE TABLE IF NOT EXISTS (a unique
        // violation in pg_type); the second try finds the table.
        tableReady = make(false)
          .catch(() => make(false))
          .then(() => {});
      }
      await tableReady;
      return make(true);
    },
    close: () => pool.end(),
  };
}

function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
}

/** The limiters the app applies (app.ts), made on one store. */
export interface ServerLimiters {
  /** Per client address, on the public device routes. */
  public: RateLimiterAbstract;
  /** Per token (else address), on the admin routes. */
  admin: RateLimiterAbstract;
  /** Failed authentications per client address (auth/middleware.ts). */
  authFailures: RateLimiterAbstract;
  /** Telemetry batches per device, and per client address (routes/telemetry.ts). */
  telemetryDevice: RateLimiterAbstract;
  telemetryAddress: RateLimiterAbstract;
}

export async function createServerLimiters(
  store: LimiterStore,
  perMinute: {
    public: number;
    admin: number;
    authFailures: number;
    telemetryDevice: number;
    telemetryAddress: number;
  },
): Promise<ServerLimiters> {
  return {
    public: await store.limiter('public', perMinute.public, 60),
    admin: await store.limiter('admin', perMinute.admin, 60),
    authFailures: await store.limiter('auth-failures', perMinute.authFailures, 60),
    telemetryDevice: await store.limiter('telemetry-device', perMinute.telemetryDevice, 60),
    telemetryAddress: await store.limiter('telemetry-address', perMinute.telemetryAddress, 60),
  };
}
