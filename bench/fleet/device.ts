import {
  type Backend,
  type BrowserFamily,
  type DeviceSegment,
  type Histogram,
  recordValue,
  type TelemetryBatch,
  type TelemetryRecord,
} from '@edgeship/protocol';
import { testRecord } from '../../test/support/telemetry-batch.ts';
import { gaussian, pickByShare, pickOne } from '../../update-server/src/canary/random-draws.ts';
import {
  ENERGY_EDGES,
  makeBatch,
  postBatch as postSigned,
} from '../../update-server/src/telemetry/testing.ts';

/** A simulated device: what kind it is, what it runs, and what it reports. */

export interface Profile {
  name: string;
  latencyMedianMs: number;
  /** Log-normal spread of latency. */
  latencySigma: number;
  errorRate: number;
  /** Distribution of the monitored feature: as the reference (uniform) or shifted towards 0. */
  energy: 'uniform' | 'skewed';
  /** The profile applies only to devices of this browser; the others run the candidate as HEALTHY. */
  only?: { browser: BrowserFamily };
}

export const HEALTHY: Profile = {
  name: 'healthy',
  latencyMedianMs: 8,
  latencySigma: 0.35,
  errorRate: 0.005,
  energy: 'uniform',
};
export const REGRESSIONS: Record<'slower' | 'errors' | 'drift', Profile> = {
  slower: { ...HEALTHY, name: 'slower (latency x1.6)', latencyMedianMs: 8 * 1.6 },
  errors: { ...HEALTHY, name: 'fails more (5% vs 0.5%)', errorRate: 0.05 },
  drift: { ...HEALTHY, name: 'drifted inputs', energy: 'skewed' },
};
/** A regression on one browser's devices only (a WASM or WebGPU bug in one engine). */
export const FIREFOX_ONLY: Profile = {
  ...HEALTHY,
  name: 'fails more on Firefox only (5% vs 0.5%)',
  errorRate: 0.05,
  only: { browser: 'firefox' },
};

/**
 * What a forging install claims, for the release its bucket gets (so that it counts), at
 * `FORGED_VOLUME` times an honest device's volume. `bad` tries to halt: the candidate terrible,
 * the control perfect. `good` tries to hide a regression: the candidate perfect, the control terrible.
 */
export type Forgery = 'bad' | 'good';
const TERRIBLE: Profile = {
  name: 'forged terrible',
  latencyMedianMs: 80,
  latencySigma: 0.35,
  errorRate: 0.5,
  energy: 'skewed',
};
const PERFECT: Profile = {
  name: 'forged perfect',
  latencyMedianMs: 2,
  latencySigma: 0.1,
  errorRate: 0,
  energy: 'uniform',
};
const FORGED_VOLUME = 50;

function forgedProfile(forgery: Forgery, onCandidate: boolean): Profile {
  return (forgery === 'bad') === onCandidate ? TERRIBLE : PERFECT;
}

export interface Accumulator {
  inferences: number;
  errors: number;
  latency: Histogram;
  energy: number[];
}

const FLAKY_ERROR_RATE = 0.2;

/** Browser, OS and backend mixes of a web fleet (segments the server splits canary analysis by). */
const BROWSER_MIX = [
  {
    share: 0.55,
    browser: 'chrome',
    major: 131,
    os: ['windows', 'android', 'macos'],
    backends: ['webgpu', 'wasm'],
  },
  { share: 0.2, browser: 'safari', major: 18, os: ['ios', 'macos'], backends: ['wasm'] },
  { share: 0.15, browser: 'firefox', major: 133, os: ['windows', 'linux'], backends: ['wasm', 'webgl'] },
  { share: 0.1, browser: 'edge', major: 131, os: ['windows'], backends: ['webgpu', 'wasm'] },
] as const;

/** What kind of device an install is: its segment, backend, speed and flakiness. */
export interface DeviceKind {
  segment: DeviceSegment;
  backend: Backend;
  speed: number;
  flaky: boolean;
}

export function deviceKind(random: () => number, speedSigma: number, flakyShare: number): DeviceKind {
  const b = pickByShare(random, BROWSER_MIX);
  const pick = <T>(list: readonly T[]) => pickOne(random, list);
  const speed = Math.exp(speedSigma * gaussian(random));
  return {
    segment: {
      browser: b.browser,
      browserMajor: b.major,
      os: pick(b.os),
      deviceClass: speed > 1.5 ? 'low' : speed < 0.7 ? 'high' : 'mid',
    },
    backend: pick(b.backends),
    speed,
    flaky: random() < flakyShare,
  };
}

/** An install: its key, network and kind, fixed for the fleet's life. */
export interface Install extends DeviceKind {
  id: string;
  /** The install key's private half: signs every batch. */
  key: CryptoKey;
  /** Source address of its connections (its network). */
  from: string;
  forger: boolean;
}

export interface Device extends Install {
  /** Per model: the release it runs. */
  active: Map<string, string>;
  checkEvery: number;
  nextCheck: number;
  sendEvery: number;
  nextSend: number;
  /** Per model and release, what happened since the last batch. */
  acc: Map<string, Map<string, Accumulator>>;
  outbox: TelemetryBatch[];
  /** Models whose candidate this device activated before its rollout was halted. */
  ranCandidate: Set<string>;
}

/** How one model behaves on a device: the scenario's side of a draw. */
export interface ModelDraw {
  model: string;
  candidateVersion: string;
  candidate: Profile;
  forged: Forgery | null;
  random: () => number;
}

/** What a draw reads and writes of a device (the in-process canaries, canaries.ts, have no key). */
export type Drawing = Pick<Device, 'active' | 'forger' | 'segment' | 'flaky' | 'speed' | 'acc'>;

/** Runs `n` inferences of every model on a device, into its accumulators. */
export function drawInferences(device: Drawing, models: ModelDraw[], n: number): void {
  if (n === 0) return;
  for (const m of models) {
    const version = device.active.get(m.model)!;
    const forging = device.forger && m.forged !== null;
    const p = forging
      ? forgedProfile(m.forged!, version === m.candidateVersion)
      : version === m.candidateVersion &&
          (!m.candidate.only || m.candidate.only.browser === device.segment.browser)
        ? m.candidate
        : HEALTHY;
    const errorRate = device.flaky && !forging ? Math.max(p.errorRate, FLAKY_ERROR_RATE) : p.errorRate;
    const medianMs = p.latencyMedianMs * (forging ? 1 : device.speed);
    const r = m.random;
    let perModel = device.acc.get(m.model);
    if (!perModel) {
      perModel = new Map();
      device.acc.set(m.model, perModel);
    }
    let acc = perModel.get(version);
    if (!acc) {
      acc = { inferences: 0, errors: 0, latency: {}, energy: new Array(ENERGY_EDGES.length + 1).fill(0) };
      perModel.set(version, acc);
    }
    for (let i = 0; i < (forging ? n * FORGED_VOLUME : n); i++) {
      if (r() < errorRate) {
        acc.errors += 1;
        continue;
      }
      acc.inferences += 1;
      recordValue(acc.latency, medianMs * Math.exp(p.latencySigma * gaussian(r)));
      const u = r();
      const value = p.energy === 'uniform' ? u : u * u;
      acc.energy[Math.min(9, Math.floor(value * 10))]! += 1;
    }
  }
}

/** The device's accumulated records as one batch (null when nothing happened), clearing them. */
export function takeBatch(device: Device, app: string, channel: string): TelemetryBatch | null {
  const records: TelemetryRecord[] = [];
  for (const [model, perModel] of device.acc) {
    for (const [version, acc] of perModel) {
      if (acc.inferences + acc.errors === 0) continue;
      records.push(
        testRecord({
          model,
          version,
          backend: device.backend,
          segment: device.segment,
          inferences: acc.inferences,
          errors: acc.errors > 0 ? { E_HEALTH_CHECK: acc.errors } : {},
          latencyMs: acc.latency,
          features: [{ name: 'energy', counts: acc.energy }],
        }),
      );
    }
  }
  device.acc.clear();
  if (records.length === 0) return null;
  return makeBatch(device.id, records, { app, channel, windowMs: device.sendEvery * 60_000 });
}

/** Sends a signed batch from the device's network; status 0 when the connection failed. */
export async function postBatch(
  server: string,
  device: Device,
  batch: TelemetryBatch,
): Promise<{ status: number; duplicate: boolean }> {
  try {
    const { status, body } = await postSigned(server, batch, { key: device.key, from: device.from });
    return { status, duplicate: (body as { status?: string } | null)?.status === 'duplicate' };
  } catch {
    return { status: 0, duplicate: false };
  }
}
