import type { TelemetryBatch } from '@edgeship/protocol';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Registry as PromRegistry } from 'prom-client';
import type { Database, DialectName } from '../storage/schema.ts';
import type { RegistryStore } from '../storage/types.ts';
import { windowOf } from './aggregate.ts';
import { driftPerFeature } from './drift.ts';
import { GroupCommit } from './group-commit.ts';
import { type DriftSample, TelemetryMetrics } from './metrics.ts';
import { DEFAULT_PRUNE_CHUNK_ROWS, TelemetryPruner } from './prune.ts';
import { QualitySource } from './quality.ts';
import { type RetentionPolicy, retentionPolicy } from './retention.ts';
import { SignatureVerifier } from './signature-pool.ts';
import {
  type DeviceCap,
  type IngestOutcome,
  type IngestPrefetch,
  type IngestTransaction,
  TelemetryStore,
} from './store.ts';
import { ReleaseCatalog } from './validate.ts';

export interface TelemetryOptions {
  /** Aggregation window in seconds (server receive time; a device clock cannot move data). */
  windowSec?: number;
  /** What one device may contribute per window. */
  deviceCap?: DeviceCap;
  /** Telemetry requests per device per minute (on the server's rate-limit store, http/shared-limits.ts). */
  perDevicePerMinute?: number;
  /** Telemetry requests per client address per minute (many devices share a NAT). */
  perAddressPerMinute?: number;
  /** Batches per transaction, and batches waiting before the server answers "busy". */
  maxGroup?: number;
  maxQueued?: number;
  /** Window of the drift gauges on /metrics. */
  metricsDriftWindowSec?: number;
  /** How often the pruner deletes rows past their retention (0: never on its own), and rows per DELETE. */
  pruneIntervalMs?: number;
  pruneChunkRows?: number;
}

export const DEFAULT_TELEMETRY_OPTIONS: Required<TelemetryOptions> = {
  windowSec: 60,
  deviceCap: { batchesPerWindow: 120, inferencesPerWindow: 2_000_000 },
  perDevicePerMinute: 240,
  perAddressPerMinute: 120_000,
  maxGroup: 256,
  maxQueued: 20_000,
  metricsDriftWindowSec: 3600,
  pruneIntervalMs: 3_600_000,
  pruneChunkRows: DEFAULT_PRUNE_CHUNK_ROWS,
};

export interface TelemetryDeps {
  db: Kysely<Database>;
  dialect: DialectName;
  registry: RegistryStore;
  log: Logger;
  options?: TelemetryOptions;
  /** What is kept how long, and which batch times are accepted (default: retentionPolicy()). */
  retention?: RetentionPolicy;
  /** Telemetry windows, batch-time checks and pruning read this clock. */
  now?: () => Date;
}

/**
 * How long a group commit waits for batches already being checked: at most a few milliseconds
 * added to an acknowledgement, for groups several times larger on a busy server.
 */
const INGEST_LINGER_MS = 5;

/** Batches committed together, handed to listeners (canary analysis) after the commit. */
export type AcceptedListener = (batches: TelemetryBatch[]) => void;

/** A verified batch as the ingest queue holds it: with the network prefix it came from. */
export interface IngestItem {
  batch: TelemetryBatch;
  /** telemetry/network-prefix.ts */
  prefix: string;
}

/**
 * Runs inside the ingest transaction with the accepted batches (the canary evidence writer), and on
 * PostgreSQL with the installs and active canaries read with the group's duplicate check.
 */
export type CommitHook = (
  trx: IngestTransaction,
  accepted: IngestItem[],
  nowMs: number,
  prefetched?: IngestPrefetch,
) => Promise<void>;

/** Ingest (group-committed), the aggregates' store, the release catalog and the Prometheus metrics. */
export class TelemetryService {
  readonly store: TelemetryStore;
  readonly catalog: ReleaseCatalog;
  readonly options: Required<TelemetryOptions>;
  readonly retention: RetentionPolicy;
  /** Deletes batch ids and per-device rows past their retention; the server starts it. */
  readonly pruner: TelemetryPruner;
  readonly now: () => Date;
  /** Batch signatures, checked on a worker thread once it is up (telemetry/signature-pool.ts). */
  readonly signatures: SignatureVerifier;
  private readonly writer: GroupCommit<IngestItem, IngestOutcome>;
  private readonly listeners: AcceptedListener[] = [];
  private readonly hooks: CommitHook[] = [];
  private metrics: TelemetryMetrics | null = null;
  private driftCache: { at: number; samples: Promise<DriftSample[]> } | null = null;

  constructor(private readonly deps: TelemetryDeps) {
    this.options = { ...DEFAULT_TELEMETRY_OPTIONS, ...deps.options };
    this.store = new TelemetryStore(deps.db, deps.dialect);
    this.catalog = new ReleaseCatalog(deps.registry);
    this.now = deps.now ?? (() => new Date());
    this.retention = deps.retention ?? retentionPolicy({}, this.options.windowSec);
    this.pruner = new TelemetryPruner({
      db: deps.db,
      dialect: deps.dialect,
      policy: this.retention,
      now: this.now,
      log: deps.log,
      intervalMs: this.options.pruneIntervalMs,
      chunkRows: this.options.pruneChunkRows,
    });
    this.signatures = new SignatureVerifier((error) =>
      deps.log.warn({ err: error }, 'signature worker failed; signatures are checked on the event loop'),
    );
    this.writer = new GroupCommit(
      (batches) => this.commit(batches),
      this.options.maxGroup,
      this.options.maxQueued,
      INGEST_LINGER_MS,
    );
  }

  /**
   * A batch is being checked (signature, limits) and will be ingested unless refused: the next
   * group commit may wait a moment for it (telemetry/group-commit.ts). Call the returned function
   * right before `ingest`, or when the batch is refused.
   */
  expectBatch(): () => void {
    return this.writer.expect();
  }

  /** Registers the per-release metrics on a server's Prometheus registry. */
  attachMetrics(registry: PromRegistry): void {
    const quality = new QualitySource(
      this.store,
      this.catalog,
      {
        windowSec: this.options.metricsDriftWindowSec,
        aggregateWindowSec: this.options.windowSec,
        now: this.now,
      },
      (error) => this.deps.log.warn({ err: error }, 'quality metrics failed'),
    );
    this.metrics ??= new TelemetryMetrics(
      registry,
      () => this.driftSamples(),
      () => quality.samples(),
    );
  }

  onAccepted(listener: AcceptedListener): void {
    this.listeners.push(listener);
  }

  onCommit(hook: CommitHook): void {
    this.hooks.push(hook);
  }

  /** Resolves after the batch's transaction committed; null when the queue is full. */
  ingest(batch: TelemetryBatch, prefix = 'unknown'): Promise<IngestOutcome> | null {
    return this.writer.submit({ batch, prefix });
  }

  get windowSec(): number {
    return this.options.windowSec;
  }

  /** Waits for queued batches to be committed (on shutdown, before the database closes). */
  async drain(): Promise<void> {
    await this.writer.drain();
    await this.signatures.close();
  }

  private async commit(items: IngestItem[]): Promise<IngestOutcome[]> {
    const now = this.now();
    const batches = items.map((i) => i.batch);
    const outcomes = await this.store.ingest(
      batches,
      windowOf(now.getTime(), this.options.windowSec),
      this.options.deviceCap,
      now.toISOString(),
      async (trx, accepted, prefetched) => {
        // Wall time, not the telemetry clock: hooks compare it with registry times (rollout start).
        const at = Date.now();
        for (const hook of this.hooks)
          await hook(
            trx,
            accepted.map((i) => items[i]!),
            at,
            prefetched,
          );
      },
    );
    const accepted = batches.filter((_, i) => outcomes[i] === 'accepted');
    if (accepted.length > 0) {
      for (const batch of accepted) this.metrics?.observe(batch);
      for (const listener of this.listeners) {
        try {
          listener(accepted);
        } catch (error) {
          this.deps.log.error({ err: error }, 'telemetry listener failed');
        }
      }
    }
    return outcomes;
  }

  /** Drift of every release with data in the metrics window, cached for a few seconds per scrape. */
  private driftSamples(): Promise<DriftSample[]> {
    const at = Date.now();
    if (this.driftCache && at - this.driftCache.at < 5_000) return this.driftCache.samples;
    const samples = this.computeDrift().catch((error) => {
      this.deps.log.warn({ err: error }, 'drift metrics failed');
      return [];
    });
    this.driftCache = { at, samples };
    return samples;
  }

  private async computeDrift(): Promise<DriftSample[]> {
    const since = windowOf(
      this.now().getTime() - this.options.metricsDriftWindowSec * 1000,
      this.options.windowSec,
    );
    const out: DriftSample[] = [];
    for (const { app, channel } of await this.store.channelsSince(since)) {
      const perRelease = new Map<
        string,
        { model: string; version: string; features: Record<string, number[]> }
      >();
      for (const [key, values] of await this.store.aggregates({ app, channel, since, role: 'active' })) {
        const id = `${key.model}@${key.version}`;
        const entry = perRelease.get(id) ?? { model: key.model, version: key.version, features: {} };
        for (const [name, counts] of Object.entries(values.features)) {
          const sum = entry.features[name] ?? [];
          counts.forEach((n, i) => {
            sum[i] = (sum[i] ?? 0) + n;
          });
          entry.features[name] = sum;
        }
        perRelease.set(id, entry);
      }
      for (const { model, version, features } of perRelease.values()) {
        const spec = await this.catalog.monitoring(model, version);
        if (!spec) continue;
        for (const [feature, d] of Object.entries(driftPerFeature(features, spec))) {
          out.push({ app, channel, model, version, feature, psi: d.psi, jsDistance: d.jsDistance, ks: d.ks });
        }
      }
    }
    return out;
  }
}
