import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  inRollout,
  mergeHistograms,
  mulberry32,
  type SegmentValues,
  segmentValues,
} from '@edgeship/protocol';
import { type CanaryPolicy, DEFAULT_CANARY_POLICY } from '../../update-server/src/canary/analysis.ts';
import { rolloutBucketSync } from '../../update-server/src/canary/bucket.ts';
import {
  type Arm,
  armOf,
  DEFAULT_EVIDENCE_CAPS,
  type InstallEvidence,
} from '../../update-server/src/canary/evidence.ts';
import { type ArmReleases, analyzeEvidence } from '../../update-server/src/canary/robust.ts';
import { uniformMonitoring } from '../../update-server/src/telemetry/testing.ts';
import {
  type Accumulator,
  type DeviceKind,
  type Drawing,
  deviceKind,
  drawInferences,
  type Forgery,
  HEALTHY,
  type ModelDraw,
  type Profile,
} from './device.ts';
import { CANDIDATE, CONTROL } from './scenario.ts';

/**
 * Many canaries on one simulated fleet, judged in-process by the server's own analysis
 * (canary/robust.ts analyzeEvidence, the default policy) over the evidence the server's store
 * would hold (canary/evidence.ts armOf: bucket recomputed, the control sample; its per-install and
 * per-network caps). Devices are the fleet simulator's (device.ts: speed log-normal, flaky
 * devices, four browsers, three backends; forgers draw the same forged profiles) with the same
 * update-check and send schedules as simulate.ts; each canary is its own rollout with its own salt,
 * staged 1% -> 10% -> 50% -> 100% and looked at after every tick's batches.
 *
 * What it leaves out is HTTP, signatures and SQLite, which simulate.ts runs for real: 100
 * canaries through a real server at 10,000 devices would take hours on two cores, and ingest
 * changes nothing the analysis sees (simulate.test.ts checks that no batch is lost or counted
 * twice). What it keeps is what decides a false halt: who is in which arm when, what each install
 * has reported by each look, and the verdict code.
 */

export interface CanaryFleetOptions {
  devices: number;
  seed: number;
  /** Canaries in all, run `perRound` at a time side by side (memory: every canary keeps a row per install). */
  canaries: number;
  /** The first canary's number less one: processes with different offsets run different canaries. */
  firstCanary?: number;
  perRound?: number;
  candidate?: Profile;
  /** How the forging devices (`forgedShare` of the fleet) lie about every canary; null: nobody forges. */
  forged?: Forgery | null;
  forgedShare?: number;
  stages?: number[];
  ticksPerStage?: number;
  tickMinutes?: number;
  checkMinutes?: [number, number];
  sendEveryMinutes?: number;
  inferencesPerMinute?: number;
  speedSigma?: number;
  flakyShare?: number;
  devicesPerNetwork?: number;
  policy?: CanaryPolicy;
  log?: (line: string) => void;
  /** Called after each round with every run so far (a long run leaves partial results). */
  onRound?: (runs: CanaryRun[]) => Promise<void> | void;
}

export interface CanaryRun {
  model: string;
  outcome: 'halted' | 'promoted';
  /** Looks with a verdict (enough installs in both arms) up to the halt or the end, and all looks. */
  verdictLooks: number;
  looks: number;
  haltedAtShareBps: number | null;
  haltReason: string | null;
  /** Installs in each arm at the halt or the end. */
  installs: { canary: number; control: number };
  /** The overall latency test at the halt or the end: ratio of the typical installs' p95, and its p. */
  latency: { ratio: number; z: number; p: number } | null;
}

export interface CanaryFleetReport {
  devices: number;
  forgedDevices: number;
  forged: Forgery | null;
  candidate: string;
  speedSigma: number;
  flakyShare: number;
  seed: number;
  stages: number[];
  ticksPerStage: number;
  wallMs: number;
  halted: number;
  runs: CanaryRun[];
}

interface SimDevice extends Drawing {
  id: string;
  prefix: string;
  segmentValues: SegmentValues;
  checkEvery: number;
  nextCheck: number;
  nextSend: number;
}

interface Canary extends ModelDraw {
  salt: string;
  buckets: Uint16Array;
  stage: number;
  ticksInStage: number;
  rows: Record<Arm, Map<string, InstallEvidence>>;
  perPrefix: Record<Arm, Map<string, number>>;
  looks: number;
  verdictLooks: number;
  run: CanaryRun | null;
}

const RELEASES: Record<Arm, ArmReleases> = {
  canary: { version: CANDIDATE, references: { energy: uniformMonitoring().features[0]!.reference } },
  control: { version: CONTROL, references: { energy: uniformMonitoring().features[0]!.reference } },
};

const hex = (random: () => number, bytes: number) =>
  Array.from({ length: bytes }, () =>
    Math.floor(random() * 256)
      .toString(16)
      .padStart(2, '0'),
  ).join('');

/** A seeded install id shaped like an Ed25519 public key (base64url of 32 bytes): runs repeat exactly. */
function installId(random: () => number): string {
  return Buffer.from(Array.from({ length: 32 }, () => Math.floor(random() * 256))).toString('base64url');
}

export async function runCanaries(options: CanaryFleetOptions): Promise<CanaryFleetReport> {
  const o = {
    firstCanary: 0,
    perRound: 20,
    candidate: HEALTHY,
    forged: null,
    forgedShare: 0,
    stages: [100, 1000, 5000, 10000],
    ticksPerStage: 6,
    tickMinutes: 5,
    checkMinutes: [15, 60] as [number, number],
    sendEveryMinutes: 10,
    inferencesPerMinute: 3,
    speedSigma: 0.6,
    flakyShare: 0.01,
    devicesPerNetwork: 8,
    policy: DEFAULT_CANARY_POLICY,
    log: () => {},
    onRound: () => {},
    ...options,
  };
  const started = Date.now();
  const random = mulberry32(o.seed ^ 0x5eed);
  const networks = Math.min(512, Math.ceil(o.devices / o.devicesPerNetwork));
  const installs = Array.from({ length: o.devices }, (_, i) => {
    const net = i % networks;
    const id = installId(random);
    const forger = random() < o.forgedShare;
    const kind: DeviceKind = deviceKind(random, o.speedSigma, o.flakyShare);
    return { id, forger, kind, prefix: `127.${20 + (net >> 8)}.${net & 255}.0/24` };
  });
  const runs: CanaryRun[] = [];
  const end = o.firstCanary + o.canaries;
  for (let first = o.firstCanary; first < end; first += o.perRound) {
    const count = Math.min(o.perRound, end - first);
    const roundRandom = mulberry32(o.seed * 7919 + first);
    const canaries: Canary[] = Array.from({ length: count }, (_, j) => {
      const salt = hex(roundRandom, 16);
      return {
        model: `canary-${first + j + 1}`,
        candidateVersion: CANDIDATE,
        candidate: o.candidate,
        forged: o.forged,
        random: mulberry32(o.seed * 104729 + first + j),
        salt,
        buckets: Uint16Array.from(installs, (d) => rolloutBucketSync(salt, d.id)),
        stage: 0,
        ticksInStage: 0,
        rows: { canary: new Map(), control: new Map() },
        perPrefix: { canary: new Map(), control: new Map() },
        looks: 0,
        verdictLooks: 0,
        run: null,
      };
    });
    const devices: SimDevice[] = installs.map((install) => {
      const checkEvery = o.checkMinutes[0] + roundRandom() * (o.checkMinutes[1] - o.checkMinutes[0]);
      return {
        id: install.id,
        prefix: install.prefix,
        forger: install.forger,
        ...install.kind,
        segmentValues: segmentValues(
          { backend: install.kind.backend, segment: install.kind.segment },
          '0.1.0',
        ),
        active: new Map(canaries.map((c) => [c.model, CONTROL])),
        acc: new Map(),
        checkEvery,
        nextCheck: roundRandom() * checkEvery,
        nextSend: roundRandom() * o.sendEveryMinutes,
      };
    });
    await runRound(o, canaries, devices);
    runs.push(...canaries.map((c) => c.run!));
    const halted = canaries.filter((c) => c.run!.outcome === 'halted').length;
    o.log(
      `canaries ${first + 1}-${first + count}: ${halted} halted (${Math.round((Date.now() - started) / 1000)} s)`,
    );
    await o.onRound(runs);
  }
  return {
    devices: o.devices,
    forgedDevices: installs.filter((d) => d.forger).length,
    forged: o.forged,
    candidate: o.candidate.name,
    speedSigma: o.speedSigma,
    flakyShare: o.flakyShare,
    seed: o.seed,
    stages: o.stages,
    ticksPerStage: o.ticksPerStage,
    wallMs: Date.now() - started,
    halted: runs.filter((r) => r.outcome === 'halted').length,
    runs,
  };
}

type Resolved = Required<CanaryFleetOptions>;

async function runRound(o: Resolved, canaries: Canary[], devices: SimDevice[]): Promise<void> {
  let simNow = 0;
  let live = canaries;
  const draw = (device: SimDevice, minutes: number) =>
    drawInferences(device, live, Math.round(o.inferencesPerMinute * minutes));
  const index = new Map(devices.map((d, i) => [d, i]));
  while (live.length > 0) {
    simNow += o.tickMinutes;
    for (const device of devices) {
      const i = index.get(device)!;
      let from = simNow - o.tickMinutes;
      while (device.nextCheck <= simNow) {
        draw(device, device.nextCheck - from);
        from = device.nextCheck;
        // chooseRelease's rule for one canary rollout (protocol/src/bucketing.ts).
        for (const c of live)
          device.active.set(c.model, inRollout(c.buckets[i]!, shareOf(o, c)) ? CANDIDATE : CONTROL);
        device.nextCheck += device.checkEvery;
      }
      draw(device, simNow - from);
      if (device.nextSend <= simNow) {
        deliver(device, live, o);
        device.nextSend += o.sendEveryMinutes;
      }
    }
    for (const c of live) look(c, o);
    live = live.filter((c) => c.run === null);
    // Let the event loop breathe between ticks (a log line, a signal).
    await new Promise((r) => setImmediate(r));
  }
}

function shareOf(o: Resolved, c: Canary): number {
  return o.stages[c.stage]!;
}

/** What the server's evidence store would add for one batch (canary/evidence.ts record + apply). */
function deliver(device: SimDevice, live: Canary[], o: Resolved): void {
  const byModel = new Map(live.map((c) => [c.model, c]));
  for (const [model, perVersion] of device.acc) {
    const c = byModel.get(model);
    if (!c) continue;
    const shareBps = shareOf(o, c);
    const rollout = { arms: [{ release: CANDIDATE, shareBps }], control: CONTROL, salt: c.salt, shareBps };
    for (const [version, acc] of perVersion) {
      if (acc.inferences + acc.errors === 0) continue;
      // One treatment arm here: 'canary' or 'control' (armOf names further arms canary-<i>).
      const arm = armOf(rollout, device.id, version);
      if (arm === 'canary' || arm === 'control') add(c, arm, device, acc);
    }
  }
  device.acc.clear();
}

function add(c: Canary, arm: 'canary' | 'control', device: SimDevice, acc: Accumulator): void {
  const caps = DEFAULT_EVIDENCE_CAPS;
  const rows = c.rows[arm];
  const prev = rows.get(device.id);
  const events = acc.inferences + acc.errors;
  if ((prev ? prev.inferences + prev.errors : 0) + events > caps.maxEventsPerInstall) return;
  if (!prev) {
    const installs = c.perPrefix[arm].get(device.prefix) ?? 0;
    if (installs >= caps.maxInstallsPerPrefix) return;
    c.perPrefix[arm].set(device.prefix, installs + 1);
  }
  // A new object per change, as the store hands out (robust.ts caches per-row figures by identity).
  rows.set(device.id, {
    deviceId: device.id,
    prefix: device.prefix,
    arm,
    inferences: (prev?.inferences ?? 0) + acc.inferences,
    errors: (prev?.errors ?? 0) + acc.errors,
    latency: mergeHistograms(prev?.latency ?? {}, acc.latency),
    features: {
      energy: (prev?.features.energy ?? acc.energy.map(() => 0)).map((n, k) => n + acc.energy[k]!),
    },
    segment: device.segmentValues,
  });
}

/** One look, as the monitor's after a round of reports; then the stage plan (simulate.ts's Scenario.step). */
function look(c: Canary, o: Resolved): void {
  const list = [...c.rows.canary.values(), ...c.rows.control.values()];
  const verdict = analyzeEvidence(list, RELEASES.canary, RELEASES.control, o.policy);
  c.looks += 1;
  if (verdict.decision !== 'insufficient-data') c.verdictLooks += 1;
  const last = c.stage === o.stages.length - 1 && c.ticksInStage + 1 >= o.ticksPerStage;
  if (verdict.decision !== 'halt' && !last) {
    c.ticksInStage += 1;
    if (c.ticksInStage >= o.ticksPerStage) {
      c.stage += 1;
      c.ticksInStage = 0;
    }
    return;
  }
  const test = verdict.evidence.tests?.find((t) => t.scope === 'all' && t.criterion === 'latency');
  c.run = {
    model: c.model,
    outcome: verdict.decision === 'halt' ? 'halted' : 'promoted',
    verdictLooks: c.verdictLooks,
    looks: c.looks,
    haltedAtShareBps: verdict.decision === 'halt' ? shareOf(o, c) : null,
    haltReason: verdict.decision === 'halt' ? verdict.reasons.join('; ') : null,
    installs: { canary: c.rows.canary.size, control: c.rows.control.size },
    latency: test ? { ratio: Math.exp(test.canary - test.control), z: test.z, p: test.p } : null,
  };
  // The rows are not needed any more: free them for the next round.
  c.rows = { canary: new Map(), control: new Map() };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      devices: { type: 'string', default: '10000' },
      seed: { type: 'string', default: '1' },
      first: { type: 'string', default: '0' },
      canaries: { type: 'string', default: '100' },
      'per-round': { type: 'string', default: '20' },
      'forged-share': { type: 'string', default: '0' },
      forged: { type: 'string' },
      'speed-sigma': { type: 'string', default: '0.6' },
      'flaky-share': { type: 'string', default: '0.01' },
      out: { type: 'string', default: resolve(import.meta.dirname, 'results-canaries.json') },
    },
  });
  const write = (report: object) =>
    writeFile(
      values.out!,
      `${JSON.stringify({ node: process.version, at: new Date().toISOString(), ...report }, null, 2)}\n`,
    );
  const report = await runCanaries({
    devices: Number(values.devices),
    seed: Number(values.seed),
    canaries: Number(values.canaries),
    firstCanary: Number(values.first),
    perRound: Number(values['per-round']),
    forgedShare: Number(values['forged-share']),
    forged: (values.forged as Forgery | undefined) ?? null,
    speedSigma: Number(values['speed-sigma']),
    flakyShare: Number(values['flaky-share']),
    log: (line) => process.stderr.write(`${line}\n`),
    onRound: (runs) => write({ partial: true, runs }),
  });
  await write(report);
  const out = { node: process.version, at: new Date().toISOString(), ...report };
  process.stdout.write(
    `${JSON.stringify({ ...out, runs: out.runs.filter((r) => r.outcome === 'halted') }, null, 2)}\n`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  });
}
