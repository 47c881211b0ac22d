import {
  type Histogram,
  MAX_ROLLOUT_ARMS,
  MAX_SHARE_BPS,
  type RolloutArm,
  rolloutArm,
  type SegmentValues,
  segmentValues,
  type TelemetryRecord,
} from '@edgeship/protocol';
import type { Insertable, Kysely, Selectable } from 'kysely';
import { groupBy } from '../group-by.ts';
import type { Database } from '../storage/schema.ts';
import { addHistogram, mergeQuality, type QualityStats, recordValues } from '../telemetry/aggregate.ts';
import type { IngestItem } from '../telemetry/service.ts';
import type { IngestPrefetch, IngestTransaction, PrefetchedRollout } from '../telemetry/store.ts';
import { rolloutBucketSync } from './bucket.ts';

/**
 * What a canary analysis may count. A client can lie about everything it reports, so the server
 * decides which records are evidence, as each group of batches commits (same transaction, so an
 * acknowledged batch is counted once, here too):
 *
 * 1. Only signed batches reach this point (routes/telemetry.ts): an install is its Ed25519 key.
 * 2. An install counts for a rollout only if the server saw it before the rollout started: the
 *    salt is new per rollout, so nobody can have made keys that fall in its bucket (key grinding).
 * 3. A record counts for the canary arm only from an install whose bucket (protocol bucketing,
 *    recomputed here) is inside the rollout and for the rollout's release; for the control arm
 *    only from an install outside it, for the control release. Anything else is a lie or a
 *    device that has not checked for updates since the share changed: not counted.
 * 4. Caps: an install adds at most `maxEventsPerInstall` events to an arm over a rollout, and at
 *    most `maxInstallsPerPrefix` installs of one /24 or /48 count per arm.
 *
 * The analysis then weighs and trims what is here (robust.ts). The fleet view and /metrics keep
 * reading the plain aggregates: this table only decides what may steer a rollout.
 */

/**
 * `canary`: the rollout's release (an experiment's first arm); `canary-<i>`: an experiment's arm i
 * (1-based after the first, rollouts with `arms`); `control`: the control release.
 */
export type Arm = 'canary' | 'control' | `canary-${number}`;

/** The evidence arm of treatment arm i: `canary` for the first, so one-arm rollouts read as before. */
export function treatmentArm(i: number): Arm {
  return i === 0 ? 'canary' : `canary-${i}`;
}

const ARMS: Arm[] = ['control', ...Array.from({ length: MAX_ROLLOUT_ARMS }, (_, i) => treatmentArm(i))];

export interface EvidenceCaps {
  /** Events (inferences + errors) one install may add to one arm of one rollout. */
  maxEventsPerInstall: number;
  /** Installs of one network prefix that may count in one arm of one rollout. */
  maxInstallsPerPrefix: number;
}

export const DEFAULT_EVIDENCE_CAPS: EvidenceCaps = { maxEventsPerInstall: 20_000, maxInstallsPerPrefix: 64 };

/** One install's evidence in one arm of one rollout. */
export interface InstallEvidence {
  deviceId: string;
  prefix: string;
  arm: Arm;
  inferences: number;
  errors: number;
  latency: Histogram;
  features: Record<string, number[]>;
  /** Which kind of device (protocol segments), from the install's latest record; absent before 0005. */
  segment?: SegmentValues;
  /** The install's feedback and outcomes in this arm (experiments read them); absent before 0010. */
  quality?: QualityStats;
}

function addQuality(a: QualityStats, b: QualityStats): QualityStats {
  mergeQuality(a, b);
  return a;
}

const parseQuality = (json: string | undefined): QualityStats => ({
  confusion: {},
  outcomes: {},
  ...JSON.parse(json ?? '{}'),
});

interface ActiveCanary {
  id: string;
  app: string;
  channel: string;
  model: string;
  release: string;
  control: string;
  salt: string;
  shareBps: number;
  /** The treatment arms (one, `release` at `shareBps`, for a rollout without arms). */
  arms: RolloutArm[];
  createdMs: number;
}

/**
 * The control arm is a sample from the top of the bucket range, as large as the canary but at
 * least 10% of the fleet: enough to compare with, without a row per install of the whole fleet.
 */
export function controlFrom(shareBps: number): number {
  return Math.max(shareBps, MAX_SHARE_BPS - Math.max(shareBps, 1000));
}

const ROWS = 400;
const SEEN_REFRESH_MS = 86_400_000;
const num = (v: number | string | bigint) => Number(v);
const eventsOf = (r: { inferences: number; errors: number }) => r.inferences + r.errors;

function recordErrors(record: TelemetryRecord): number {
  return Object.values(record.errors).reduce<number>((a, b) => a + (b ?? 0), 0);
}

function addCounts(into: Record<string, number[]>, name: string, counts: readonly number[]) {
  const sum = into[name] ?? [];
  counts.forEach((n, i) => {
    sum[i] = (sum[i] ?? 0) + n;
  });
  into[name] = sum;
}

interface EvidenceView {
  rows: Map<string, InstallEvidence>;
  seqs: Map<string, number>;
  /** The largest change number read. */
  seq: number;
  list: InstallEvidence[];
  usedMs: number;
}

/** A rollout's kept rows are dropped when no look has used them for this long. */
const VIEW_IDLE_MS = 600_000;

function fromRow(r: Selectable<Database['canary_evidence']>): InstallEvidence {
  return {
    deviceId: r.device_id,
    prefix: r.prefix,
    arm: r.arm as Arm,
    inferences: num(r.inferences),
    errors: num(r.errors),
    latency: JSON.parse(r.latency) as Histogram,
    features: JSON.parse(r.features) as Record<string, number[]>,
    ...(r.segment ? { segment: JSON.parse(r.segment) as SegmentValues } : {}),
    quality: parseQuality(r.quality),
  };
}

export class CanaryEvidenceStore {
  /** Per rollout, the rows read so far (see evidence()). */
  private readonly views = new Map<string, EvidenceView>();

  constructor(
    private readonly db: Kysely<Database>,
    readonly caps: EvidenceCaps = DEFAULT_EVIDENCE_CAPS,
  ) {}

  /**
   * Registers the installs and adds what counts; runs inside the ingest transaction. `prefetched`:
   * the group's installs and the active canaries, read in this transaction by the ingest's
   * duplicate check (PostgreSQL: two round trips fewer); read here when absent.
   */
  async record(
    trx: IngestTransaction,
    items: IngestItem[],
    nowMs: number,
    prefetched?: IngestPrefetch,
  ): Promise<void> {
    const firstSeen = await this.registerInstalls(trx, items, nowMs, prefetched?.installs);
    const canaries = prefetched ? prefetched.canaries.map(canaryFromRow) : await activeCanaries(trx);
    if (canaries.length === 0) return;
    const byModel = new Map<string, ActiveCanary>();
    for (const r of canaries) byModel.set(`${r.app}\u0000${r.channel}\u0000${r.model}`, r);

    // What each install would add per rollout and arm, before the caps.
    const deltas = new Map<string, InstallEvidence & { rolloutId: string }>();
    for (const { batch, prefix } of items) {
      const seen = firstSeen.get(batch.deviceId)!;
      for (const record of batch.records) {
        if (record.role !== 'active') continue;
        const rollout = byModel.get(`${batch.app}\u0000${batch.channel}\u0000${record.model}`);
        if (!rollout || seen.ms >= rollout.createdMs) continue;
        const arm = armOf(rollout, batch.deviceId, record.version);
        if (!arm) continue;
        const key = `${rollout.id}\u0000${arm}\u0000${batch.deviceId}`;
        const d = deltas.get(key) ?? {
          rolloutId: rollout.id,
          arm,
          deviceId: batch.deviceId,
          prefix: seen.prefix ?? prefix,
          inferences: 0,
          errors: 0,
          latency: {},
          features: {},
        };
        d.segment = segmentValues(record, batch.runtimeVersion);
        d.inferences += record.inferences;
        d.errors += recordErrors(record);
        addHistogram(d.latency, record.latencyMs);
        for (const f of record.features) addCounts(d.features, f.name, f.counts);
        if (record.quality)
          d.quality = addQuality(d.quality ?? parseQuality('{}'), recordValues(record).quality);
        deltas.set(key, d);
      }
    }
    if (deltas.size === 0) return;
    await this.apply(trx, [...deltas.values()]);
  }

  /**
   * Every install's evidence for one rollout. The rows read at earlier calls are kept per rollout
   * and only the rows changed since (a larger change number) are read again, by index: a look
   * costs the rows that changed, not every row of the rollout. The list is the same data a full
   * read gives (tests compare both); it is shared, do not change it.
   */
  async evidence(rolloutId: string): Promise<InstallEvidence[]> {
    return (await this.view(rolloutId)).list;
  }

  /** The rollout's evidence and its change number (equal numbers: equal evidence). */
  async view(
    rolloutId: string,
    keep = true,
  ): Promise<{ list: InstallEvidence[]; seq: number; changed: number }> {
    const now = Date.now();
    // A process that does not lead (the fleet view only) has no keepOnly: unused views expire.
    for (const [id, v] of this.views) if (v.usedMs < now - VIEW_IDLE_MS) this.views.delete(id);
    let view = this.views.get(rolloutId);
    if (!view) {
      view = { rows: new Map(), seqs: new Map(), seq: -1, list: [], usedMs: now };
      // An ended rollout's rows no longer change: read once, keep nothing.
      if (keep) this.views.set(rolloutId, view);
    } else if (!keep) this.views.delete(rolloutId);
    view.usedMs = now;
    const rows = await this.db
      .selectFrom('canary_evidence')
      .selectAll()
      .where('rollout_id', '=', rolloutId)
      .where('seq', '>', view.seq)
      .execute();
    let changed = 0;
    for (const r of rows) {
      const key = `${r.arm}\u0000${r.device_id}`;
      const seq = num(r.seq);
      // Two reads may overlap (the monitor and the fleet view): never put an older row back.
      if ((view.seqs.get(key) ?? -1) >= seq) continue;
      view.seqs.set(key, seq);
      view.rows.set(key, fromRow(r));
      view.seq = Math.max(view.seq, seq);
      changed += 1;
    }
    if (changed > 0) view.list = [...view.rows.values()];
    return { list: view.list, seq: view.seq, changed };
  }

  /** Whether the rows of this rollout are kept. */
  keeps(rolloutId: string): boolean {
    return this.views.has(rolloutId);
  }

  /** Drops the kept rows of rollouts no longer judged (the monitor passes the active ones). */
  keepOnly(rolloutIds: ReadonlySet<string>): void {
    for (const id of this.views.keys()) if (!rolloutIds.has(id)) this.views.delete(id);
  }

  /**
   * First sighting (time and network) of each install in the group; new ones are inserted now,
   * and known ones marked seen (at most once a day, so that this is not a write per batch).
   */
  private async registerInstalls(
    trx: IngestTransaction,
    items: IngestItem[],
    nowMs: number,
    known?: IngestPrefetch['installs'],
  ) {
    const out = new Map<string, { ms: number; prefix: string | null }>();
    const stale: string[] = [];
    const ids = [...new Set(items.map((i) => i.batch.deviceId))];
    const take = (r: {
      device_id: string;
      prefix: string;
      first_seen_ms: number | string;
      last_seen_ms: number | string;
    }) => {
      out.set(r.device_id, { ms: num(r.first_seen_ms), prefix: r.prefix });
      if (num(r.last_seen_ms) < nowMs - SEEN_REFRESH_MS) stale.push(r.device_id);
    };
    if (known) {
      // Read for every device of the group: keep the accepted ones'.
      const accepted = new Set(ids);
      for (const r of known) if (accepted.has(r.device_id)) take(r);
    } else {
      for (let i = 0; i < ids.length; i += ROWS) {
        const rows = await trx
          .selectFrom('telemetry_installs')
          .select(['device_id', 'prefix', 'first_seen_ms', 'last_seen_ms'])
          .where('device_id', 'in', ids.slice(i, i + ROWS))
          .execute();
        for (const r of rows) take(r);
      }
    }
    for (let i = 0; i < stale.length; i += ROWS) {
      await trx
        .updateTable('telemetry_installs')
        .set({ last_seen_ms: nowMs })
        .where('device_id', 'in', stale.slice(i, i + ROWS))
        .execute();
    }
    const fresh = new Map<string, Insertable<Database['telemetry_installs']>>();
    for (const { batch, prefix } of items) {
      if (out.has(batch.deviceId)) continue;
      out.set(batch.deviceId, { ms: nowMs, prefix: null });
      fresh.set(batch.deviceId, {
        device_id: batch.deviceId,
        prefix,
        first_seen_ms: nowMs,
        last_seen_ms: nowMs,
      });
    }
    const values = [...fresh.values()];
    for (let i = 0; i < values.length; i += ROWS) {
      await trx
        .insertInto('telemetry_installs')
        .values(values.slice(i, i + ROWS))
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
    return out;
  }

  /** Applies the per-install and per-prefix caps, then merges into the rows. */
  private async apply(trx: IngestTransaction, deltas: Array<InstallEvidence & { rolloutId: string }>) {
    const existing = new Map<string, InstallEvidence>();
    const perPrefix = new Map<string, number>();
    const seqs = new Map<string, number>();
    for (const [rolloutId, group] of groupBy(deltas, (d) => d.rolloutId)) {
      for (let i = 0; i < group.length; i += ROWS) {
        const part = group.slice(i, i + ROWS);
        const rows = await trx
          .selectFrom('canary_evidence')
          .selectAll()
          .where('rollout_id', '=', rolloutId)
          // Every arm named, so the lookup is by the whole primary key (rollout, arm, device):
          // without it SQLite walks every row of the rollout for each group of batches.
          .where('arm', 'in', ARMS)
          .where(
            'device_id',
            'in',
            part.map((d) => d.deviceId),
          )
          .execute();
        for (const r of rows) existing.set(`${rolloutId}\u0000${r.arm}\u0000${r.device_id}`, fromRow(r));
      }
      // The rollout's next change number. Read under the ingest transaction's lock (one writer
      // on SQLite; on PostgreSQL the channel's advisory lock, telemetry/store.ts), so the numbers
      // of a rollout commit in order and a reader that saw n has seen every row numbered up to n.
      const last = await trx
        .selectFrom('canary_evidence')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .where('rollout_id', '=', rolloutId)
        .executeTakeFirst();
      seqs.set(rolloutId, num(last?.seq ?? 0) + 1);
      // Only an install new to its arm is held to the per-prefix cap: count only those networks
      // (a count walks the network's rows, and after its first batch an install is not new).
      const fresh = group.filter((d) => !existing.has(`${rolloutId}\u0000${d.arm}\u0000${d.deviceId}`));
      const prefixes = [...new Set(fresh.map((d) => d.prefix))];
      for (let i = 0; i < prefixes.length; i += ROWS) {
        const rows = await trx
          .selectFrom('canary_evidence')
          .select(['arm', 'prefix', (eb) => eb.fn.countAll<number | string>().as('installs')])
          .where('rollout_id', '=', rolloutId)
          .where('arm', 'in', ARMS) // the whole (rollout, arm, prefix) index, as above
          .where('prefix', 'in', prefixes.slice(i, i + ROWS))
          .groupBy(['arm', 'prefix'])
          .execute();
        for (const r of rows) perPrefix.set(`${rolloutId}\u0000${r.arm}\u0000${r.prefix}`, num(r.installs));
      }
    }
    const upserts = new Map<string, Insertable<Database['canary_evidence']>>();
    for (const d of deltas) {
      const key = `${d.rolloutId}\u0000${d.arm}\u0000${d.deviceId}`;
      const prev = existing.get(key);
      // Per-install cap: a record that would take the install past it does not count at all.
      if ((prev ? eventsOf(prev) : 0) + eventsOf(d) > this.caps.maxEventsPerInstall) continue;
      let row: InstallEvidence;
      if (prev) {
        prev.inferences += d.inferences;
        prev.errors += d.errors;
        addHistogram(prev.latency, d.latency);
        for (const [name, counts] of Object.entries(d.features)) addCounts(prev.features, name, counts);
        if (d.segment) prev.segment = d.segment;
        if (d.quality) prev.quality = addQuality(prev.quality ?? parseQuality('{}'), d.quality);
        row = prev;
      } else {
        // Per-prefix cap: one network cannot bring more than so many installs into an arm.
        const prefixKey = `${d.rolloutId}\u0000${d.arm}\u0000${d.prefix}`;
        const installs = perPrefix.get(prefixKey) ?? 0;
        if (installs >= this.caps.maxInstallsPerPrefix) continue;
        perPrefix.set(prefixKey, installs + 1);
        existing.set(key, d);
        row = d;
      }
      upserts.set(key, {
        rollout_id: d.rolloutId,
        arm: row.arm,
        device_id: row.deviceId,
        prefix: row.prefix,
        inferences: row.inferences,
        errors: row.errors,
        latency: JSON.stringify(row.latency),
        features: JSON.stringify(row.features),
        segment: row.segment ? JSON.stringify(row.segment) : null,
        quality: JSON.stringify(row.quality ?? {}),
        seq: seqs.get(d.rolloutId)!,
      });
    }
    // The merged rows were computed here (under the transaction's lock): one multi-row upsert.
    const rows = [...upserts.values()];
    for (let i = 0; i < rows.length; i += ROWS / 8) {
      await trx
        .insertInto('canary_evidence')
        .values(rows.slice(i, i + ROWS / 8))
        .onConflict((oc) =>
          oc.columns(['rollout_id', 'arm', 'device_id']).doUpdateSet((eb) => ({
            inferences: eb.ref('excluded.inferences'),
            errors: eb.ref('excluded.errors'),
            latency: eb.ref('excluded.latency'),
            features: eb.ref('excluded.features'),
            segment: eb.ref('excluded.segment'),
            quality: eb.ref('excluded.quality'),
            seq: eb.ref('excluded.seq'),
          })),
        )
        .execute();
    }
  }
}

/**
 * The arm a record counts for: the treatment arm this install's bucket falls in (protocol
 * rolloutArm, as the device chooses), if the record is for that arm's release; the control if
 * the bucket is in the control sample and the record is for the control release; else none.
 * Exported for the fleet simulator's in-process canaries (bench/fleet/canaries.ts), which must
 * count exactly what this store counts.
 */
export function armOf(
  rollout: Pick<ActiveCanary, 'arms' | 'control' | 'salt' | 'shareBps'>,
  deviceId: string,
  version: string,
): Arm | null {
  if (version !== rollout.control && !rollout.arms.some((a) => a.release === version)) return null;
  const bucket = rolloutBucketSync(rollout.salt, deviceId);
  const arm = rolloutArm(rollout.arms, bucket);
  if (arm >= 0 && version === rollout.arms[arm]!.release) return treatmentArm(arm);
  if (version === rollout.control && bucket >= controlFrom(rollout.shareBps)) return 'control';
  return null;
}

/** An active canary rollout's row as the evidence writer reads it (also prefetched, telemetry/store.ts). */
function canaryFromRow(r: PrefetchedRollout): ActiveCanary {
  return {
    id: r.id,
    app: r.app,
    channel: r.channel,
    model: r.model,
    release: r.release,
    control: r.control!,
    salt: r.salt,
    shareBps: r.share_bps,
    arms:
      r.arms === '[]'
        ? [{ release: r.release, shareBps: r.share_bps }]
        : (JSON.parse(r.arms) as RolloutArm[]),
    createdMs: Date.parse(r.created_at),
  };
}

async function activeCanaries(trx: IngestTransaction): Promise<ActiveCanary[]> {
  const rows = await trx
    .selectFrom('rollouts')
    .select([
      'id',
      'app',
      'channel',
      'model',
      'release',
      'control',
      'salt',
      'share_bps',
      'arms',
      'created_at',
    ])
    .where('state', '=', 'active')
    .where('mode', '=', 'canary')
    .where('share_bps', '>', 0)
    .where('control', 'is not', null)
    .execute();
  return rows.map(canaryFromRow);
}
