import { histogramQuantile, type MonitoringSpec } from '@edgeship/protocol';
import type { CanaryMonitor } from '../canary/monitor.ts';
import { shadowEvidence, shadowVerdict } from '../canary/shadow.ts';
import type { RegistryStore } from '../storage/types.ts';
import { type AggregateKey, type AggregateValues, emptyValues, mergeValues } from './aggregate.ts';
import { driftPerFeature, type FeatureDrift } from './drift.ts';
import { type QualitySummary, qualitySummary } from './quality.ts';
import type { TelemetryService } from './service.ts';
import { stuckDevices } from './stuck.ts';

export interface FleetQuery {
  app: string;
  channel: string;
  model?: string;
  /** Epoch seconds: [since, until). */
  since: number;
  until: number;
  /** Width of each window of the time series, a multiple of the aggregation window. */
  stepSec: number;
  /** After a release becomes a device's target, how long before a device not on it is stuck. */
  stuckGraceSec?: number;
}

export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface ReleaseStats {
  model: string;
  version: string;
  devices: number;
  /** Share (0..1) of the model's reporting devices that ran this release. */
  share: number | null;
  inferences: number;
  errors: number;
  errorRate: number | null;
  errorsByCode: Record<string, number>;
  latencyMs: Percentiles;
  meanLoadMs: number | null;
  backends: Record<string, { inferences: number; errors: number; latencyMs: Percentiles }>;
  drift: Record<string, FeatureDrift>;
  update?: UpdatePipelineStats;
  /** Live accuracy from the app's feedback and outcome rates (quality.ts). */
  quality?: QualitySummary;
}

/** The update pipeline for one release, from devices' UpdateReports. */
export interface UpdatePipelineStats {
  downloads: number;
  downloadBytes: number;
  meanDownloadMs: number | null;
  /** Share of downloads that reused stored chunks (resumed, or shared with another release). */
  resumedShare: number | null;
  /** Update failures (download, verification, staging) by code, and per attempt. */
  failures: Record<string, number>;
  failureRate: number | null;
  /** Backend candidates passed over when it opened, by reason. */
  fallbacks: Record<string, number>;
  /** Times the guard after activation left it for the last known good. */
  guardFallbacks: number;
  /** Share of its records from devices whose storage is persisted. */
  persistedShare: number | null;
}

function pipelineStats(v: AggregateValues): UpdatePipelineStats {
  const p = v.pipeline;
  const failed = Object.values(p.failures).reduce((a, b) => a + b, 0);
  return {
    downloads: p.downloads,
    downloadBytes: v.downloadBytes,
    meanDownloadMs: p.downloads > 0 ? v.downloadMsSum / p.downloads : null,
    resumedShare: p.downloads > 0 ? p.resumed / p.downloads : null,
    failures: p.failures,
    failureRate: p.downloads + failed > 0 ? failed / (p.downloads + failed) : null,
    fallbacks: p.fallbacks,
    guardFallbacks: p.guardFallbacks,
    persistedShare: p.persistedReports > 0 ? p.persisted / p.persistedReports : null,
  };
}

export interface ShadowStats {
  model: string;
  candidate: string;
  against: string;
  devices: number;
  compared: number;
  agreements: number;
  agreement: number | null;
  /** Absolute output difference (not ×1000) per compared input. */
  absDiff: Percentiles;
  candidateLatencyMs: Percentiles;
}

const percentiles = (h: Record<string, number>, scale = 1): Percentiles => {
  const q = (p: number) => {
    const v = histogramQuantile(h, p);
    return v === null ? null : v / scale;
  };
  return { p50: q(0.5), p95: q(0.95), p99: q(0.99) };
};

/** One release's rows in a bucket, summed, and the devices that ran it in the bucket. */
interface ReleasePart {
  model: string;
  version: string;
  rows: Array<[AggregateKey, AggregateValues]>;
  sum: AggregateValues;
  devices: number;
  bucket: number | null;
}

/**
 * The fleet's state for one app/channel (optionally one model): versions in use and their share of
 * devices, latency percentiles from the merged histograms, error rates, drift per feature against
 * each release's reference, shadow agreement per candidate, over the whole range and per window.
 */
export async function fleetReport(
  telemetry: TelemetryService,
  registry: RegistryStore,
  monitor: CanaryMonitor | null,
  q: FleetQuery,
) {
  const filter = { app: q.app, channel: q.channel, model: q.model, since: q.since, until: q.until };
  const [rows, devices, windowDevices, dropped, stuck] = await Promise.all([
    telemetry.store.aggregates(filter),
    telemetry.store.deviceCounts(filter),
    telemetry.store.deviceCounts(filter, q.stepSec),
    telemetry.store.droppedOnDevices(filter),
    stuckDevices(telemetry.store, registry, filter, q.stuckGraceSec),
  ]);
  const models = [...new Set(rows.map(([k]) => k.model))].sort();
  const totals = new Map<string, Map<number | null, number>>();
  for (const model of models) {
    const [all, perWindow] = await Promise.all([
      telemetry.store.totalDevices({ ...filter, model }),
      telemetry.store.totalDevices({ ...filter, model }, q.stepSec),
    ]);
    totals.set(model, new Map([...all, ...perWindow]));
  }
  const specs = new Map<string, MonitoringSpec | null>();
  for (const [k] of rows) {
    const id = `${k.model}@${k.version}`;
    if (!specs.has(id)) specs.set(id, await telemetry.catalog.monitoring(k.model, k.version));
  }
  const deviceCount = (
    list: typeof devices,
    bucket: number | null,
    model: string,
    version: string,
    role: string,
  ) =>
    list.find((d) => d.bucket === bucket && d.model === model && d.version === version && d.role === role)
      ?.devices ?? 0;

  const releaseStats = ({ model, version, rows: part, sum, devices: n, bucket }: ReleasePart) => {
    const backends: ReleaseStats['backends'] = {};
    const perBackend = new Map<string, AggregateValues>();
    for (const [k, v] of part) {
      perBackend.set(k.backend, mergeValues(perBackend.get(k.backend) ?? emptyValues(), v));
    }
    for (const [backend, v] of perBackend) {
      backends[backend] = { inferences: v.inferences, errors: v.errors, latencyMs: percentiles(v.latency) };
    }
    const total = totals.get(model)?.get(bucket) ?? 0;
    const attempts = sum.inferences + sum.errors;
    const spec = specs.get(`${model}@${version}`);
    return {
      model,
      version,
      devices: n,
      share: total > 0 ? n / total : null,
      inferences: sum.inferences,
      errors: sum.errors,
      errorRate: attempts > 0 ? sum.errors / attempts : null,
      errorsByCode: sum.errorsByCode,
      latencyMs: percentiles(sum.latency),
      meanLoadMs: sum.loadCount > 0 ? sum.loadMsSum / sum.loadCount : null,
      backends,
      drift: spec ? driftPerFeature(sum.features, spec) : {},
      update: pipelineStats(sum),
      quality: qualitySummary(sum.quality, spec),
    } satisfies ReleaseStats;
  };

  const shadowStats = ({ model, version: candidate, sum, devices: n }: ReleasePart) =>
    Object.entries(sum.shadow).map(([against, s]) => ({
      model,
      candidate,
      against,
      devices: n,
      compared: s.compared,
      agreements: s.agreements,
      agreement: s.compared > 0 ? s.agreements / s.compared : null,
      absDiff: percentiles(s.absDiff, 1000),
      candidateLatencyMs: percentiles(sum.latency),
    })) satisfies ShadowStats[];

  const group = (part: Array<[AggregateKey, AggregateValues]>, bucket: number | null) => {
    const byRelease = new Map<string, Array<[AggregateKey, AggregateValues]>>();
    for (const row of part) {
      const id = `${row[0].role}\u0000${row[0].model}\u0000${row[0].version}`;
      byRelease.set(id, [...(byRelease.get(id) ?? []), row]);
    }
    const versions: ReleaseStats[] = [];
    const shadow: ShadowStats[] = [];
    for (const [id, list] of [...byRelease].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const [role, model, version] = id.split('\u0000') as [string, string, string];
      const sum = list.reduce((acc, [, v]) => mergeValues(acc, v), emptyValues());
      const n = deviceCount(bucket === null ? devices : windowDevices, bucket, model, version, role);
      const release = { model, version, rows: list, sum, devices: n, bucket };
      if (role === 'active') versions.push(releaseStats(release));
      else shadow.push(...shadowStats(release));
    }
    return { versions, shadow };
  };

  const whole = group(rows, null);
  const buckets = new Map<number, Array<[AggregateKey, AggregateValues]>>();
  for (const row of rows) {
    const b = Math.floor(row[0].windowStart / q.stepSec) * q.stepSec;
    buckets.set(b, [...(buckets.get(b) ?? []), row]);
  }
  const windows = [...buckets]
    .sort(([a], [b]) => a - b)
    .map(([start, part]) => {
      const { versions, shadow } = group(part, start);
      return {
        start: new Date(start * 1000).toISOString(),
        end: new Date((start + q.stepSec) * 1000).toISOString(),
        versions: versions.map((v) => ({
          ...v,
          shadow: shadowAgreementOf(shadow, v.model, v.version),
        })),
        shadow,
      };
    });

  const rollouts = (
    await registry.listRollouts({ app: q.app, channel: q.channel, model: q.model, states: ['active'] })
  ).map(async (rollout) => ({
    ...rollout,
    canary: rollout.mode === 'canary' && monitor ? await monitor.analyse(rollout) : null,
    shadow:
      rollout.mode !== 'shadow'
        ? null
        : monitor
          ? await monitor.analyseShadow(rollout)
          : shadowVerdict(await shadowEvidence(telemetry, rollout)),
  }));

  return {
    app: q.app,
    channel: q.channel,
    model: q.model ?? null,
    since: new Date(q.since * 1000).toISOString(),
    until: new Date(q.until * 1000).toISOString(),
    stepSec: q.stepSec,
    devices: Object.fromEntries(models.map((m) => [m, totals.get(m)?.get(null) ?? 0])),
    droppedOnDevices: dropped,
    versions: whole.versions,
    shadow: whole.shadow,
    /** Devices whose latest report is on a version older than their bucket's (telemetry/stuck.ts). */
    stuck,
    windows,
    rollouts: await Promise.all(rollouts),
  };
}

/** A candidate's agreement, shown on the active entry it was compared against (for charts). */
function shadowAgreementOf(shadow: ShadowStats[], model: string, version: string) {
  const against = shadow.filter((s) => s.model === model && s.against === version);
  if (against.length === 0) return null;
  const compared = against.reduce((n, s) => n + s.compared, 0);
  const agreements = against.reduce((n, s) => n + s.agreements, 0);
  return {
    agreement: compared > 0 ? agreements / compared : null,
    compared,
    candidates: against.map((s) => s.candidate),
  };
}
