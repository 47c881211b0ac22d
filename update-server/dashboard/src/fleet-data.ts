/**
 * The fleet read API (GET /v1/admin/fleet) turned into chart series. Kept apart from the view so
 * the shape it reads is in one place and unit-testable without a browser.
 */

export interface FleetPoint {
  /** Window start, seconds since the epoch. */
  t: number;
  release: string;
  /** Devices that ran this release (active role) in the window. */
  devices: number | null;
  inferences: number;
  errors: number;
  errorRate: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  /** Share of the fleet's devices (0..1) that ran this release in the window. */
  share: number | null;
  drift: Record<string, number | null>;
  shadowAgreement: number | null;
  /** Live accuracy from the app's feedback (null without any), and how many predictions it labelled. */
  accuracy: number | null;
  labelled: number;
  /** Per outcome name its mean (for a 0/1 outcome, its rate) and count. */
  outcomes: Array<{ name: string; mean: number | null; count: number }>;
}

/** A shadow candidate's agreement with the release it ran beside, in one window. */
export interface ShadowPoint {
  t: number;
  label: string;
  agreement: number | null;
}

/** A running rollout with the canary analysis' current verdict (null: shadow, or no monitor). */
export interface LiveVerdict {
  rolloutId: string;
  release: string;
  decision: string;
  reasons: string[];
  /** Installs per segment value (canary/control) per dimension with more than one value. */
  segments: Array<{ dimension: string; values: Array<{ value: string; canary: number; control: number }> }>;
  /** Segments the rollout leaves out ('browser=firefox'), by the channel's policy. */
  excluded: string[];
}

/** The update pipeline of one release over the range (fleet API `versions[].update`). */
export interface PipelineRow {
  release: string;
  downloads: number;
  meanDownloadMs: number | null;
  resumedShare: number | null;
  failureRate: number | null;
  failures: Record<string, number>;
  fallbacks: Record<string, number>;
  persistedShare: number | null;
}

/** Devices stuck on old versions for one model (fleet API `stuck[]`). */
export interface StuckRow {
  model: string;
  judged: number;
  stuck: number;
  share: number | null;
  graceSec: number;
  byVersion: Record<string, number>;
}

export interface FleetData {
  points: FleetPoint[];
  shadow: ShadowPoint[];
  /** Whole-range statistics per release. */
  totals: FleetPoint[];
  live: LiveVerdict[];
  pipeline: PipelineRow[];
  stuck: StuckRow[];
  /** Width of each window, seconds (null when the server did not say). */
  stepSec: number | null;
}

export const EMPTY_FLEET: FleetData = {
  points: [],
  shadow: [],
  totals: [],
  live: [],
  pipeline: [],
  stuck: [],
  stepSec: null,
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const numOr = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function seconds(v: unknown): number | null {
  if (typeof v === 'number') return v > 1e11 ? Math.floor(v / 1000) : v;
  if (typeof v === 'string') {
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
  }
  return null;
}

/** Reads one release's statistics in one window; null when it is not such a record. */
function readPoint(t: number, raw: Obj): FleetPoint | null {
  const release = raw.version ?? raw.release;
  if (typeof release !== 'string') return null;
  const latency = (isObj(raw.latencyMs) ? raw.latencyMs : isObj(raw.latency) ? raw.latency : {}) as Obj;
  const inferences = numOr(raw.inferences) ?? 0;
  const errors = numOr(raw.errors) ?? 0;
  const drift: Record<string, number | null> = {};
  if (isObj(raw.drift)) {
    for (const [feature, d] of Object.entries(raw.drift)) drift[feature] = isObj(d) ? numOr(d.psi) : numOr(d);
  }
  const shadow = raw.shadow;
  const quality = isObj(raw.quality) ? raw.quality : {};
  const outcomes = Object.entries(isObj(quality.outcomes) ? quality.outcomes : {}).flatMap(([name, o]) =>
    isObj(o) ? [{ name, mean: numOr(o.mean), count: numOr(o.count) ?? 0 }] : [],
  );
  // One release's row: the window's time series or, at t = 0, the whole range.
  return {
    t,
    release,
    devices: numOr(raw.devices),
    inferences,
    errors,
    errorRate: numOr(raw.errorRate) ?? (inferences + errors > 0 ? errors / (inferences + errors) : null),
    p50: numOr(latency.p50),
    p95: numOr(latency.p95),
    p99: numOr(latency.p99),
    share: numOr(raw.share),
    drift,
    shadowAgreement: isObj(shadow) ? numOr(shadow.agreement) : numOr(raw.shadowAgreement),
    accuracy: numOr(quality.accuracy),
    labelled: numOr(quality.labelled) ?? 0,
    outcomes,
  };
}

/**
 * Reads the body of GET /v1/admin/fleet (update-server/src/telemetry/fleet-report.ts fleetReport):
 * `windows[].versions[]` and `windows[].shadow[]` per time window, `versions[]` over the whole
 * range, `rollouts[].canary` the live verdicts. Unknown or missing parts read as empty.
 */
export function normalizeFleet(body: unknown): FleetData {
  if (!isObj(body)) return EMPTY_FLEET;
  const points: FleetPoint[] = [];
  const shadow: ShadowPoint[] = [];
  for (const w of Array.isArray(body.windows) ? body.windows : []) {
    if (!isObj(w)) continue;
    const t = seconds(w.start);
    if (t === null) continue;
    for (const r of Array.isArray(w.versions) ? w.versions : []) {
      const point = isObj(r) ? readPoint(t, r) : null;
      if (point) points.push(point);
    }
    for (const s of Array.isArray(w.shadow) ? w.shadow : []) {
      if (isObj(s) && typeof s.candidate === 'string') {
        shadow.push({ t, label: `${s.candidate} vs ${String(s.against)}`, agreement: numOr(s.agreement) });
      }
    }
  }
  const totals = (Array.isArray(body.versions) ? body.versions : [])
    .map((r) => (isObj(r) ? readPoint(0, r) : null))
    .filter((p): p is FleetPoint => p !== null);
  const live: LiveVerdict[] = [];
  for (const r of Array.isArray(body.rollouts) ? body.rollouts : []) {
    if (!isObj(r) || !isObj(r.canary) || typeof r.id !== 'string') continue;
    const split =
      isObj(r.canary.evidence) && isObj(r.canary.evidence.segments) ? r.canary.evidence.segments : {};
    const segments = Object.entries(split)
      .map(([dimension, values]) => ({
        dimension,
        values: Object.entries(isObj(values) ? values : {}).map(([value, n]) => ({
          value,
          canary: (isObj(n) && numOr(n.canary)) || 0,
          control: (isObj(n) && numOr(n.control)) || 0,
        })),
      }))
      .filter((d) => d.values.length > 1);
    live.push({
      rolloutId: r.id,
      release: String(r.release),
      decision: String(r.canary.decision),
      reasons: Array.isArray(r.canary.reasons) ? r.canary.reasons.map(String) : [],
      segments,
      excluded: (Array.isArray(r.excludedSegments) ? r.excludedSegments : [])
        .filter(isObj)
        .map((s) => `${String(s.dimension)}=${String(s.value)}`),
    });
  }
  const pipeline: PipelineRow[] = [];
  for (const r of Array.isArray(body.versions) ? body.versions : []) {
    if (!isObj(r) || typeof r.version !== 'string' || !isObj(r.update)) continue;
    const u = r.update;
    pipeline.push({
      release: r.version,
      downloads: numOr(u.downloads) ?? 0,
      meanDownloadMs: numOr(u.meanDownloadMs),
      resumedShare: numOr(u.resumedShare),
      failureRate: numOr(u.failureRate),
      failures: counts(u.failures),
      fallbacks: counts(u.fallbacks),
      persistedShare: numOr(u.persistedShare),
    });
  }
  const stuck: StuckRow[] = (Array.isArray(body.stuck) ? body.stuck : []).filter(isObj).map((s) => ({
    model: String(s.model),
    judged: numOr(s.judged) ?? 0,
    stuck: numOr(s.stuck) ?? 0,
    share: numOr(s.share),
    graceSec: numOr(s.graceSec) ?? 0,
    byVersion: counts(s.byVersion),
  }));
  return { points, shadow, totals, live, pipeline, stuck, stepSec: numOr(body.stepSec) };
}

function counts(v: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(isObj(v) ? v : {})) {
    const x = numOr(n);
    if (x !== null) out[k] = x;
  }
  return out;
}

/** Shadow agreement per candidate over the windows. */
export function shadowSeries(data: FleetData): {
  times: number[];
  series: Array<{ label: string; values: Array<number | null> }>;
} {
  const times = [...new Set(data.shadow.map((p) => p.t))].sort((a, b) => a - b);
  const labels = [...new Set(data.shadow.map((p) => p.label))];
  const series = labels.map((label) => {
    const byTime = new Map(data.shadow.filter((p) => p.label === label).map((p) => [p.t, p.agreement]));
    return { label, values: times.map((t) => byTime.get(t) ?? null) };
  });
  return { times, series };
}

/** The window times and, per release, its value in each window (null where it reported nothing). */
export function seriesBy(
  data: FleetData,
  releases: string[],
  pick: (p: FleetPoint) => number | null,
): { times: number[]; series: Array<{ label: string; values: Array<number | null> }> } {
  const times = [...new Set(data.points.map((p) => p.t))].sort((a, b) => a - b);
  const series = releases.map((release) => {
    const byTime = new Map(data.points.filter((p) => p.release === release).map((p) => [p.t, pick(p)]));
    return { label: release, values: times.map((t) => byTime.get(t) ?? null) };
  });
  return { times, series };
}

export function featuresOf(data: FleetData, release: string): string[] {
  const names = new Set<string>();
  for (const p of data.points) if (p.release === release) for (const f of Object.keys(p.drift)) names.add(f);
  return [...names].sort();
}
