import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Logger } from 'pino';
import type { LeaderTask } from '../cluster/leader.ts';
import type { Database, DialectName } from '../storage/schema.ts';
import { type PruneCutoffs, pruneCutoffs, type RetentionPolicy } from './retention.ts';

/** Rows deleted per table. */
export interface PruneResult {
  batches: number;
  deviceWindows: number;
  aggregates: number;
  /** Installs silent for the per-device retention (they are new again if they come back). */
  installs: number;
  /** Canary evidence of rollouts that ended more than the per-device retention ago. */
  evidence: number;
}

/** Each table with the cutoff it is pruned by (all keyed by window_start, each with an index on it). */
const PRUNED_TABLES = [
  ['telemetry_batches', 'batches', 'perDeviceBefore'],
  ['telemetry_device_windows', 'deviceWindows', 'perDeviceBefore'],
  ['telemetry_aggregates', 'aggregates', 'aggregatesBefore'],
] as const satisfies ReadonlyArray<readonly [keyof Database, keyof PruneResult, keyof PruneCutoffs]>;

export interface PruneOptions {
  /** Rows per DELETE: one statement holds SQLite's only connection (and its write lock) this long. */
  chunkRows?: number;
  /** Asked between chunks; true stops early (shutdown). What is left goes next run. */
  shouldStop?: () => boolean;
}

export const DEFAULT_PRUNE_CHUNK_ROWS = 5_000;

/**
 * Deletes telemetry rows whose window_start is before the cutoffs, a bounded chunk per statement
 * and a turn of the event loop between chunks, so ingest transactions get in between and no
 * single delete holds a lock for long. Each chunk commits on its own: an interrupted run has
 * deleted only rows that were due anyway, and the next run picks up the rest.
 */
export async function pruneTelemetry(
  db: Kysely<Database>,
  dialect: DialectName,
  cutoffs: PruneCutoffs,
  opts: PruneOptions = {},
): Promise<PruneResult> {
  const chunkRows = opts.chunkRows ?? DEFAULT_PRUNE_CHUNK_ROWS;
  const result: PruneResult = {
    batches: 0,
    deviceWindows: 0,
    aggregates: 0,
    installs: 0,
    evidence: 0,
  };
  const chunked = async (counter: keyof PruneResult, deleteOne: () => Promise<number>) => {
    for (;;) {
      if (opts.shouldStop?.()) return false;
      const deleted = await deleteOne();
      result[counter] += deleted;
      if (deleted < chunkRows) return true;
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  for (const [table, counter, cutoff] of PRUNED_TABLES) {
    const where = sql`window_start < ${cutoffs[cutoff]}`;
    if (!(await chunked(counter, () => deleteChunk(db, dialect, table, where, chunkRows)))) return result;
  }
  const beforeMs = cutoffs.perDeviceBefore * 1000;
  const installsWhere = sql`last_seen_ms < ${beforeMs}`;
  if (
    !(await chunked('installs', () =>
      deleteChunk(db, dialect, 'telemetry_installs', installsWhere, chunkRows),
    ))
  )
    return result;
  const ended = sql`rollout_id in (select id from rollouts where state <> 'active' and updated_at < ${new Date(beforeMs).toISOString()})`;
  await chunked('evidence', () => deleteChunk(db, dialect, 'canary_evidence', ended, chunkRows));
  return result;
}

async function deleteChunk(
  db: Kysely<Database>,
  dialect: DialectName,
  table: keyof Database,
  where: RawBuilder<unknown>,
  limit: number,
): Promise<number> {
  const t = sql.table(table);
  // Physical row ids: one statement shape for every table, whatever its primary key. On
  // PostgreSQL `ctid = any(array(…))` is a TID scan; `ctid in (select …)` may scan the table.
  const query =
    dialect === 'postgres'
      ? sql`delete from ${t} where ctid = any(array(select ctid from ${t} where ${where} limit ${limit}))`
      : sql`delete from ${t} where rowid in (select rowid from ${t} where ${where} limit ${limit})`;
  const { numAffectedRows } = await query.execute(db);
  return Number(numAffectedRows ?? 0n);
}

export interface PrunerDeps {
  db: Kysely<Database>;
  dialect: DialectName;
  policy: RetentionPolicy;
  now: () => Date;
  log: Logger;
  intervalMs: number;
  chunkRows: number;
}

/**
 * Runs `pruneTelemetry` on a timer in the server process: first a minute after start (not in the
 * way of start-up), then every `intervalMs`. With several processes on one PostgreSQL only the
 * leader prunes (cluster/leader.ts starts and pauses it); were two to overlap, deleting rows that
 * another process already deleted is a no-op.
 */
export class TelemetryPruner implements LeaderTask {
  readonly name = 'telemetry-pruner';
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<PruneResult> | null = null;
  private stopped = false;
  private paused = false;

  constructor(private readonly deps: PrunerDeps) {}

  /** Starts the timer; an interval of 0 leaves pruning to whoever calls `runOnce`. */
  start(): void {
    this.paused = false;
    if (this.stopped || this.timer || this.deps.intervalMs <= 0) return;
    this.schedule(Math.min(60_000, this.deps.intervalMs));
  }

  /** Prunes now, by the policy and the clock (tests call this); joins a run already under way. */
  runOnce(): Promise<PruneResult> {
    this.running ??= (async () => {
      const started = performance.now();
      const cutoffs = pruneCutoffs(this.deps.policy, this.deps.now().getTime());
      const result = await pruneTelemetry(this.deps.db, this.deps.dialect, cutoffs, {
        chunkRows: this.deps.chunkRows,
        shouldStop: () => this.stopped || this.paused,
      });
      const total = Object.values(result).reduce((a, b) => a + b, 0);
      if (total > 0) {
        this.deps.log.info(
          { ...result, ms: Math.round(performance.now() - started) },
          'pruned telemetry past its retention',
        );
      }
      return result;
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** No longer the leader: stops the timer and a run under way (after its chunk); start() resumes. */
  async pause(): Promise<void> {
    this.paused = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }

  /** Stops the timer and waits for a run under way (it stops after its current chunk). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(async () => {
      try {
        await this.runOnce();
      } catch (error) {
        this.deps.log.warn({ err: error }, 'telemetry pruning failed; retrying next interval');
      }
      if (!this.stopped && !this.paused) this.schedule(this.deps.intervalMs);
    }, delayMs);
    this.timer.unref();
  }
}
