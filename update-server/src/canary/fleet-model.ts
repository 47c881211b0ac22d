import { mulberry32, recordValue, type SegmentValues } from '@edgeship/protocol';
import { type CanaryPolicy, type CanaryVerdict, DEFAULT_CANARY_POLICY } from './analysis.ts';
import type { Arm, InstallEvidence } from './evidence.ts';
import { gaussian, pickByShare, pickOne } from './random-draws.ts';
import { type ArmReleases, analyzeEvidence } from './robust.ts';

/**
 * A model of a canary's evidence as real fleets produce it, for the analysis tests and the bench
 * (bench/src/canary-power.ts): devices whose speeds spread log-normally, a few flaky devices that
 * fail often on every release, several browsers, OSes and backends, installs that start reporting
 * at different looks and add inferences at every look. It builds InstallEvidence directly (what
 * the evidence store would hold), so that hundreds of canaries can be watched over many looks in
 * seconds; bench/fleet/simulate.ts runs the same kind of devices against a real server.
 */

export interface FleetModel {
  canaryInstalls: number;
  controlInstalls: number;
  /** Log-normal sigma of device speed (0.5 to 0.8 in real fleets). */
  speedSigma: number;
  /** Log-normal sigma of one device's latency around its own median. */
  noiseSigma: number;
  medianMs: number;
  errorRate: number;
  /** Share of devices that fail often, on every release... */
  flakyShare: number;
  /** ...at this rate. */
  flakyErrorRate: number;
  looks: number;
  /** Inferences an install adds per look once it reports. */
  perLook: number;
}

export const REAL_FLEET: FleetModel = {
  canaryInstalls: 200,
  controlInstalls: 1000,
  speedSigma: 0.8,
  noiseSigma: 0.35,
  medianMs: 8,
  errorRate: 0.005,
  flakyShare: 0.01,
  flakyErrorRate: 0.2,
  looks: 20,
  perLook: 3,
};

/** What the canary release does differently; `only` confines it to devices of one segment. */
export interface Regression {
  latencyFactor?: number;
  errorRate?: number;
  only?: Partial<SegmentValues>;
}
export const NO_REGRESSION: Regression = {};

interface Device {
  arm: Arm;
  row: InstallEvidence;
  speed: number;
  flaky: boolean;
  startLook: number;
  affected: boolean;
}

const BROWSERS = [
  {
    share: 0.55,
    browser: 'chrome',
    major: [130, 131],
    os: ['windows', 'android', 'macos'],
    backend: ['webgpu', 'wasm'],
  },
  { share: 0.2, browser: 'safari', major: [17, 18], os: ['ios', 'macos'], backend: ['wasm'] },
  { share: 0.15, browser: 'firefox', major: [133], os: ['windows', 'linux'], backend: ['wasm', 'webgl'] },
  { share: 0.1, browser: 'edge', major: [131], os: ['windows'], backend: ['webgpu', 'wasm'] },
] as const;

function segmentOf(random: () => number, speed: number): SegmentValues {
  const b = pickByShare(random, BROWSERS);
  const pick = <T>(list: readonly T[]) => pickOne(random, list);
  return {
    browser: b.browser,
    browserVersion: `${b.browser}-${pick(b.major)}`,
    os: pick(b.os),
    backend: pick(b.backend),
    // Slow devices are mostly low-end ones (not exactly: the class is coarse).
    deviceClass: speed * Math.exp(0.3 * gaussian(random)) > 1.5 ? 'low' : speed < 0.7 ? 'high' : 'mid',
    runtime: '0.4',
  };
}

function matches(segment: SegmentValues, only: Partial<SegmentValues> | undefined): boolean {
  return !only || Object.entries(only).every(([k, v]) => segment[k as keyof SegmentValues] === v);
}

function devices(model: FleetModel, regression: Regression, random: () => number): Device[] {
  const out: Device[] = [];
  for (const arm of ['canary', 'control'] as const) {
    const n = arm === 'canary' ? model.canaryInstalls : model.controlInstalls;
    for (let i = 0; i < n; i++) {
      const speed = Math.exp(model.speedSigma * gaussian(random));
      const segment = segmentOf(random, speed);
      const id = out.length;
      out.push({
        arm,
        speed,
        flaky: random() < model.flakyShare,
        startLook: Math.floor(random() * (model.looks / 2)),
        affected: arm === 'canary' && matches(segment, regression.only),
        row: {
          deviceId: `install-${id}`,
          prefix: `10.${id % 250}.${Math.floor(id / 250) % 250}.0/24`,
          arm,
          inferences: 0,
          errors: 0,
          latency: {},
          features: {},
          segment,
        },
      });
    }
  }
  return out;
}

function step(d: Device, model: FleetModel, regression: Regression, random: () => number): void {
  const factor = d.affected ? (regression.latencyFactor ?? 1) : 1;
  const baseRate = d.flaky ? model.flakyErrorRate : model.errorRate;
  const rate =
    d.affected && regression.errorRate !== undefined
      ? baseRate + regression.errorRate - model.errorRate
      : baseRate;
  for (let i = 0; i < model.perLook; i++) {
    if (random() < rate) {
      d.row.errors += 1;
      continue;
    }
    d.row.inferences += 1;
    recordValue(
      d.row.latency,
      model.medianMs * d.speed * factor * Math.exp(model.noiseSigma * gaussian(random)),
    );
  }
}

const RELEASES: Record<Arm, ArmReleases> = {
  canary: { version: '1.1.0', references: {} },
  control: { version: '1.0.0', references: {} },
};

export interface WatchResult {
  /** The first look (1-based) that halted, or null. */
  haltedAt: number | null;
  /** The first look with a verdict (enough installs on both arms). */
  firstVerdictAt: number | null;
  /** The verdict at the halt, or at the last look. */
  verdict: CanaryVerdict;
  /** What ran the candidate until the halt (or the end): canary installs reporting, and their events. */
  exposure: { installs: number; events: number };
}

/** Watches one canary over `model.looks` looks, as the monitor would, and reports the first halt. */
export function watchCanary(
  model: FleetModel,
  regression: Regression,
  seed: number,
  policy: CanaryPolicy = DEFAULT_CANARY_POLICY,
  judge: (rows: InstallEvidence[]) => CanaryVerdict = (rows) =>
    analyzeEvidence(rows, RELEASES.canary, RELEASES.control, policy),
): WatchResult {
  const random = mulberry32(seed);
  const fleet = devices(model, regression, random);
  let firstVerdictAt: number | null = null;
  let verdict: CanaryVerdict | null = null;
  for (let look = 1; look <= model.looks; look++) {
    for (const d of fleet) if (d.startLook < look) step(d, model, regression, random);
    const rows = fleet.filter((d) => d.row.inferences + d.row.errors > 0).map((d) => ({ ...d.row }));
    verdict = judge(rows);
    if (verdict.decision !== 'insufficient-data') firstVerdictAt ??= look;
    if (verdict.decision === 'halt')
      return { haltedAt: look, firstVerdictAt, verdict, exposure: exposureOf(rows) };
  }
  const rows = fleet.map((d) => d.row).filter((r) => r.inferences + r.errors > 0);
  return { haltedAt: null, firstVerdictAt, verdict: verdict!, exposure: exposureOf(rows) };
}

function exposureOf(rows: InstallEvidence[]) {
  const canary = rows.filter((r) => r.arm === 'canary');
  return { installs: canary.length, events: canary.reduce((n, r) => n + r.inferences + r.errors, 0) };
}
