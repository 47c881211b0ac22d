import pg from 'pg';
import type { Logger } from 'pino';
import { Gauge, type Registry as PromRegistry } from 'prom-client';

/** Work that must run in one process of a deployment at a time (the canary monitor, the pruner...). */
export interface LeaderTask {
  readonly name: string;
  /** Called when this process becomes the leader. */
  start(): void;
  /** Called when it stops being the leader (lost connection, shutdown); resolves once idle. */
  pause(): Promise<void>;
}

export interface LeaderOptions {
  /** PostgreSQL connection string; none (SQLite, one process) makes this process the leader. */
  databaseUrl?: string;
  /** How often a follower tries to take the lock, and the leader checks it still holds it. */
  intervalMs: number;
  log: Logger;
  tasks: readonly LeaderTask[];
}

export const DEFAULT_LEADER_INTERVAL_MS = 5_000;

/**
 * First key of the two-key advisory lock: one number for "Edgeship's leader". The second key is the
 * schema's hash, so deployments (or test runs) in separate schemas of one database elect separately.
 */
const LOCK_CLASS = 0x45_53_4c_44; // "ESLD"

/**
 * Chooses one leader among the server processes on one PostgreSQL database with a session-level
 * advisory lock, held on a connection of its own: PostgreSQL releases it when that session ends,
 * so a killed leader (SIGKILL, OOM, a lost host once TCP notices) frees it, and a follower takes
 * it at its next try, within one interval. The leader checks its session every interval too: one
 * that lost its connection stops its tasks, and may briefly overlap with the next leader by up to
 * an interval; every task is safe to run twice (halts, re-signs and prunes are idempotent).
 */
export class LeaderElection {
  private client: pg.Client | null = null;
  private leader = false;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private stopped = false;
  private readonly gauge = { set: (_v: number) => {} };

  constructor(private readonly opts: LeaderOptions) {}

  get isLeader(): boolean {
    return this.leader;
  }

  /** Registers `edgeship_leader` (1 on the leader) on a server's Prometheus registry. */
  attachMetrics(registry: PromRegistry): void {
    const gauge = new Gauge({
      name: 'edgeship_leader',
      help: 'Whether this process runs the cluster-wide tasks (canary monitor, pruner, re-signing)',
      registers: [registry],
    });
    gauge.set(this.leader ? 1 : 0);
    this.gauge.set = (v) => gauge.set(v);
  }

  /** Takes part in the election; the first try is awaited, so a lone process leads at once. */
  async start(): Promise<void> {
    if (!this.opts.databaseUrl) {
      this.become(true);
      return;
    }
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.opts.intervalMs);
    this.timer.unref();
  }

  /** Pauses the tasks and gives up the lock (the next leader need not wait for a timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
    await this.resign();
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }

  private tick(): Promise<void> {
    this.ticking ??= this.attempt().finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    try {
      const client = this.client ?? (await this.connect());
      if (this.leader) {
        // The lock lives as long as the session: a query that answers proves both.
        await client.query('select 1');
        return;
      }
      const { rows } = await client.query<{ locked: boolean }>(
        'select pg_try_advisory_lock($1, hashtext(current_schema())) as locked',
        [LOCK_CLASS],
      );
      if (rows[0]?.locked && !this.stopped) this.become(true);
    } catch (error) {
      this.opts.log.warn({ err: error }, 'leader election: lost the database session; retrying');
      const client = this.client;
      this.client = null;
      client?.end().catch(() => {});
      await this.resign();
    }
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.opts.databaseUrl, connectionTimeoutMillis: 5_000 });
    // A dropped connection emits 'error' outside any query; the next tick notices and reconnects.
    client.on('error', () => {});
    await client.connect();
    this.client = client;
    return client;
  }

  private async resign(): Promise<void> {
    if (!this.leader) return;
    this.become(false);
    await Promise.all(this.opts.tasks.map((task) => task.pause()));
    // Released only after the tasks are idle, so the next leader never overlaps this one here.
    await this.client
      ?.query('select pg_advisory_unlock($1, hashtext(current_schema()))', [LOCK_CLASS])
      .catch(() => {});
  }

  private become(leader: boolean): void {
    this.leader = leader;
    this.gauge.set(leader ? 1 : 0);
    this.opts.log.info(
      { tasks: this.opts.tasks.map((t) => t.name) },
      leader ? 'became leader' : 'no longer leader',
    );
    if (leader) for (const task of this.opts.tasks) task.start();
  }
}
