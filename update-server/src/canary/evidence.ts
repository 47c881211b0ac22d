import {
  type Histogram,
  MAX_SHARE_BPS,
  mergeHistograms,
  type SegmentValues,
  segmentValues,
  type TelemetryRecord,
} from '@edgeship/protocol';
import type { Insertable, Kysely, Transaction } from 'kysely';
import type { Database } from '../storage/schema.ts';
import type { IngestItem } from '../telemetry/service.ts';
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

export type Arm = 'canary' | 'control';

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
}

interface ActiveCanary {
  id: string;
  app: string;
  channel: string;
  model: string;
  release: string;
  control: string;
  salt: string;
  shareBps: number;
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

export class CanaryEvidenceStore {
  constructor(
    private readonly db: Kysely<Database>,
    readonly caps: EvidenceCaps = DEFAULT_EVIDENCE_CAPS,
  ) {}

  /** Registers the installs and adds what counts; runs inside the ingest transaction. */
  async record(trx: Transaction<Database>, items: IngestItem[], nowMs: number): Promise<void> {
    const firstSeen = await this.registerInstalls(trx, items, nowMs);
    const canaries = await activeCanaries(trx);
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
        d.latency = mergeHistograms(d.latency, record.latencyMs);
        for (const f of record.features) addCounts(d.features, f.name, f.counts);
        deltas.set(key, d);
      }
    }
    if (deltas.size === 0) return;
    await this.apply(trx, [...deltas.values()]);
  }

  /** Every install's evidence for one rollout. */
  async evidence(rolloutId: string): Promise<InstallEvidence[]> {
    const rows = await this.db
      .selectFrom('canary_evidence')
      .selectAll()
      .where('rollout_id', '=', rolloutId)
      .execute();
    return rows.map((r) => ({
      deviceId: r.device_id,
      prefix: r.prefix,
      arm: r.arm as Arm,
      inferences: num(r.inferences),
      errors: num(r.errors),
      latency: JSON.parse(r.latency) as Histogram,
      features: JSON.parse(r.features) as Record<string, number[]>,
      ...(r.segment ? { segment: JSON.parse(r.segment) as SegmentValues } : {}),
    }));
  }

  /**
   * First sighting (time and network) of each install in the group; new ones are inserted now,
   * and known ones marked seen (at most once a day, so that this is not a write per batch).
   */
  private async registerInstalls(trx: Transaction<Database>, items: IngestItem[], nowMs: number) {
    const out = new Map<string, { ms: number; prefix: string | null }>();
    const stale: string[] = [];
    const ids = [...new Set(items.map((i) => i.batch.deviceId))];
    for (let i = 0; i < ids.length; i += ROWS) {
      const rows = await trx
        .selectFrom('telemetry_installs')
        .select(['device_id', 'prefix', 'first_seen_ms', 'last_seen_ms'])
        .where('device_id', 'in', ids.slice(i, i + ROWS))
        .execute();
      for (const r of rows) {
        out.set(r.device_id, { ms: num(r.first_seen_ms), prefix: r.prefix });
        if (num(r.last_seen_ms) < nowMs - SEEN_REFRESH_MS) stale.push(r.device_id);
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
  private async apply(trx: Transaction<Database>, deltas: Array<InstallEvidence & { rolloutId: string }>) {
    const existing = new Map<string, InstallEvidence>();
    const perPrefix = new Map<string, number>();
    for (const [rolloutId, group] of groupBy(deltas, (d) => d.rolloutId)) {
      for (let i = 0; i < group.length; i += ROWS) {
        const part = group.slice(i, i + ROWS);
        const rows = await trx
          .selectFrom('canary_evidence')
          .selectAll()
          .where('rollout_id', '=', rolloutId)
          .where(
            'device_id',
            'in',
            part.map((d) => d.deviceId),
          )
          .execute();
        for (const r of rows) {
          existing.set(`${rolloutId}\u0000${r.arm}\u0000${r.device_id}`, {
            deviceId: r.device_id,
            prefix: r.prefix,
            arm: r.arm as Arm,
            inferences: num(r.inferences),
            errors: num(r.errors),
            latency: JSON.parse(r.latency),
            features: JSON.parse(r.features),
            ...(r.segment ? { segment: JSON.parse(r.segment) as SegmentValues } : {}),
          });
        }
      }
      const prefixes = [...new Set(group.map((d) => d.prefix))];
      for (let i = 0; i < prefixes.length; i += ROWS) {
        const rows = await trx
          .selectFrom('canary_evidence')
          .select(['arm', 'prefix', (eb) => eb.fn.countAll<number | string>().as('installs')])
          .where('rollout_id', '=', rolloutId)
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
        prev.latency = mergeHistograms(prev.latency, d.latency);
        for (const [name, counts] of Object.entries(d.features)) addCounts(prev.features, name, counts);
        if (d.segment) prev.segment = d.segment;
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
          })),
        )
        .execute();
    }
  }
}

/** The arm a record counts for: the release this install's bucket gets, or none. */
function armOf(rollout: ActiveCanary, deviceId: string, version: string): Arm | null {
  if (version !== rollout.release && version !== rollout.control) return null;
  const bucket = rolloutBucketSync(rollout.salt, deviceId);
  if (version === rollout.release && bucket < rollout.shareBps) return 'canary';
  if (version === rollout.control && bucket >= controlFrom(rollout.shareBps)) return 'control';
  return null;
}

async function activeCanaries(trx: Transaction<Database>): Promise<ActiveCanary[]> {
  const rows = await trx
    .selectFrom('rollouts')
    .select(['id', 'app', 'channel', 'model', 'release', 'control', 'salt', 'share_bps', 'created_at'])
    .where('state', '=', 'active')
    .where('mode', '=', 'canary')
    .where('share_bps', '>', 0)
    .where('control', 'is not', null)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    app: r.app,
    channel: r.channel,
    model: r.model,
    release: r.release,
    control: r.control!,
    salt: r.salt,
    shareBps: r.share_bps,
    createdMs: Date.parse(r.created_at),
  }));
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}
