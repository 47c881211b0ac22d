import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type Backend,
  type BrowserFamily,
  chooseRelease,
  type DeviceSegment,
  describeFile,
  generateInstallKey,
  type Histogram,
  type ModelEntry,
  mulberry32,
  type Release,
  recordValue,
  type SigningKeyPair,
  signRelease,
  signTelemetryBody,
  TELEMETRY_SIGNATURE_HEADER,
  type TelemetryBatch,
  type TelemetryRecord,
  type TrustedRoot,
  verifyManifest,
} from '@edgeship/protocol';
import { SOURCE_NODE_ARGS } from '../../test/support/node-args.ts';
import { AdminClient } from '../../update-server/src/admin-client.ts';
import type { BootstrapTokens } from '../../update-server/src/auth/tokens.ts';
import {
  ENERGY_EDGES,
  postBytes,
  type ServerProcess,
  spawnServer,
  uniformMonitoring,
} from '../../update-server/src/telemetry/testing.ts';

/**
 * A simulated fleet against a real update-server process. Each device has a random id, checks
 * for updates on its own schedule, picks its release with the protocol's chooseRelease from the
 * real signed manifest, runs inferences whose latency, errors and feature values are drawn from
 * its release's distribution, and sends telemetry batches (kept until acknowledged, retried).
 * Time is compressed: one tick is `tickMinutes` of simulated time, run as fast as the server
 * acknowledges; the server's canary analysis runs on its own (real-time) timer.
 */

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

export interface FleetOptions {
  devices: number;
  seed: number;
  /** Simulated minutes per tick. */
  tickMinutes?: number;
  /** Devices check for updates every 15..60 simulated minutes (each its own period and phase). */
  checkMinutes?: [number, number];
  /** Devices send a batch every this many simulated minutes. */
  sendEveryMinutes?: number;
  inferencesPerMinute?: number;
  concurrency?: number;
  /** Share of acknowledged batches sent again (a lost response): must be answered as duplicates. */
  resendShare?: number;
  /**
   * Devices behind one /24 (the server counts evidence per network): device i sends from
   * 127.20+.x.y, networks numbered i / devicesPerNetwork, at most 512 networks.
   */
  devicesPerNetwork?: number;
  /** Share of devices that forge telemetry in scenarios that say how (`ScenarioOptions.forged`). */
  forgedShare?: number;
  /**
   * Devices differ as real ones do: each device's latency is the profile's times its own speed,
   * log-normal with this sigma (0.5 to 0.8 in real fleets; 0: identical devices)...
   */
  speedSigma?: number;
  /** ...and this share of devices is flaky, failing FLAKY_ERROR_RATE of inferences on every release. */
  flakyShare?: number;
  log?: (line: string) => void;
}

export interface ScenarioOptions {
  name: string;
  model: string;
  seed: number;
  candidate: Profile;
  /** Rollout stages in basis points. */
  stages?: number[];
  ticksPerStage?: number;
  /** Ticks to keep going after a halt (devices move back to the control). */
  ticksAfterHalt?: number;
  /** The forging devices (FleetOptions.forgedShare) lie about this model this way. */
  forged?: Forgery | null;
}

export interface ScenarioReport {
  scenario: string;
  model: string;
  candidate: string;
  /** How the forging devices lied about this model (null: none did). */
  forged: Forgery | null;
  devices: number;
  seed: number;
  stages: number[];
  outcome: 'halted' | 'promoted';
  haltedAtShareBps: number | null;
  haltReason: string | null;
  webhookReceived: boolean;
  /** Devices that activated the candidate before the halt (or ever, when promoted), over the fleet. */
  shareOfFleetRanCandidate: number;
  timeToHalt: { realMs: number; simulatedMinutes: number } | null;
  /** Simulated minutes after the halt until no device ran the candidate any more. */
  allBackOnControlAfterMinutes: number | null;
  /** This model's inferences and errors: acknowledged by the simulator's count, and as the server counted them. */
  events: { acknowledged: number; server: number; duplicatesCounted: number };
  p95LatencyMs: Record<string, number | null>;
  ticks: number;
}

export interface FleetReport {
  devices: number;
  /** Devices that forged telemetry where a scenario asked them to, and the networks all devices used. */
  forgedDevices: number;
  networks: number;
  seed: number;
  tickMinutes: number;
  ticks: number;
  wallMs: number;
  batches: {
    generated: number;
    acknowledged: number;
    lost: number;
    /** Acknowledged batches sent again (a lost response) and how many the server answered as duplicates. */
    resent: number;
    answeredDuplicate: number;
    /** Refused with a retryable status (429, 5xx, network) and kept for the next tick. */
    retriedAfterRefusal: number;
    /** Events the server counted beyond what was acknowledged, over all models (must be 0). */
    duplicatesCounted: number;
  };
  scenarios: ScenarioReport[];
}

const APP = 'fleet-app';
const CHANNEL = 'stable';
const CONTROL = '1.0.0';
const CANDIDATE = '1.1.0';

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

interface Accumulator {
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
interface DeviceKind {
  segment: DeviceSegment;
  backend: Backend;
  speed: number;
  flaky: boolean;
}

function deviceKind(random: () => number, speedSigma: number, flakyShare: number): DeviceKind {
  const u = random();
  let cumulative = 0;
  const b =
    BROWSER_MIX.find((x) => {
      cumulative += x.share;
      return u < cumulative;
    }) ?? BROWSER_MIX[0];
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
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

interface Device extends DeviceKind {
  id: string;
  /** The install key's private half: signs every batch. */
  key: CryptoKey;
  /** Source address of its connections (its network). */
  from: string;
  forger: boolean;
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

interface ScenarioState {
  s: Required<ScenarioOptions>;
  random: () => number;
  rolloutId: string;
  stage: number;
  ticksInStage: number;
  outcome: ScenarioReport['outcome'] | null;
  halt: { atMs: number; tick: number; shareBps: number; reason: string | null } | null;
  firstBad: { atMs: number; tick: number } | null;
  allBackAt: number | null;
  ackedEvents: number;
  doneTick: number;
}

interface Webhooks {
  url: string;
  rollouts: Set<string>;
  close(): Promise<void>;
}

async function webhookReceiver(): Promise<Webhooks> {
  const rollouts = new Set<string>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      try {
        const event = JSON.parse(body) as { rollout?: { id?: string } };
        if (event.rollout?.id) rollouts.add(event.rollout.id);
      } catch {}
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`,
    rollouts,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A fleet of simulated devices and the real server process they talk to. */
export class Fleet {
  private constructor(
    private readonly opts: Required<FleetOptions>,
    private readonly server: ServerProcess,
    private readonly dataDir: string,
    private readonly webhooks: Webhooks,
    private readonly tokens: BootstrapTokens,
    private readonly publisherKey: SigningKeyPair,
    private readonly root: TrustedRoot,
    readonly installs: Array<{ id: string; key: CryptoKey; from: string; forger: boolean } & DeviceKind>,
  ) {}

  static async start(options: FleetOptions): Promise<Fleet> {
    const opts: Required<FleetOptions> = {
      tickMinutes: 5,
      checkMinutes: [15, 60],
      sendEveryMinutes: 10,
      inferencesPerMinute: 3,
      concurrency: 48,
      resendShare: 0.02,
      devicesPerNetwork: 8,
      forgedShare: 0,
      speedSigma: 0.6,
      flakyShare: 0.01,
      log: () => {},
      ...options,
    };
    const dataDir = await mkdtemp(join(tmpdir(), 'edgeship-fleet-'));
    const webhooks = await webhookReceiver();
    const server = await spawnServer(['--data-dir', dataDir, '--webhook-url', webhooks.url], {
      script: resolve(import.meta.dirname, 'server-process.ts'),
      // e.g. FLEET_SERVER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the server.
      nodeArgs: [
        ...SOURCE_NODE_ARGS,
        ...(process.env.FLEET_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      ],
    });
    const read = async <T>(path: string) => JSON.parse(await readFile(join(dataDir, path), 'utf8')) as T;
    const random = mulberry32(options.seed ^ 0x5eed);
    const networks = Math.min(512, Math.ceil(options.devices / opts.devicesPerNetwork));
    // Each device is an install key (its public half the device id); forgers are drawn at random.
    const installs = await Promise.all(
      Array.from({ length: options.devices }, async (_, i) => {
        const key = await generateInstallKey();
        const net = i % networks;
        const host = 1 + (Math.floor(i / networks) % 250);
        return {
          id: key.deviceId,
          key: key.privateKey,
          from: `127.${20 + (net >> 8)}.${net & 255}.${host}`,
          forger: random() < opts.forgedShare,
          ...deviceKind(random, opts.speedSigma, opts.flakyShare),
        };
      }),
    );
    return new Fleet(
      opts,
      server,
      dataDir,
      webhooks,
      await read<BootstrapTokens>('tokens.json'),
      await read<SigningKeyPair>('keys/publisher.key.json'),
      await read<TrustedRoot>('keys/root.pub.json'),
      installs,
    );
  }

  get url(): string {
    return this.server.url;
  }

  async stop(): Promise<void> {
    await this.server.kill('SIGTERM');
    await this.webhooks.close();
    await rm(this.dataDir, { recursive: true, force: true });
  }

  private admin(role: keyof BootstrapTokens) {
    return new AdminClient(this.server.url, this.tokens[role]);
  }

  private async publish(model: string, version: string, seed: number): Promise<void> {
    const random = mulberry32(seed);
    const bytes = new Uint8Array(2048).map(() => Math.floor(random() * 256));
    const release: Release = {
      type: 'edgeship/release',
      model,
      version,
      format: 'onnx',
      files: [await describeFile('model.onnx', bytes)],
      quantization: { method: 'none' },
      inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 4] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', 1] }],
      preprocessing: [],
      postprocessing: [],
      monitoring: uniformMonitoring(),
      minRuntimeVersion: '0.1.0',
      createdAt: new Date().toISOString(),
    };
    const signed = await signRelease(release, [this.publisherKey]);
    const publisher = this.admin('publisher');
    await publisher.uploadRelease(signed, new Map([['model.onnx', bytes]]));
    await publisher.registerRelease({ release: signed });
  }

  private etag: string | null = null;
  private entries = new Map<string, ModelEntry>();

  /** The verified manifest's entry for a model (refetched with If-None-Match, verified when new). */
  private async modelEntry(model: string): Promise<ModelEntry> {
    const response = await fetch(`${this.server.url}/v1/apps/${APP}/channels/${CHANNEL}/manifest`, {
      headers: this.etag ? { 'if-none-match': this.etag } : {},
    });
    if (response.status === 200) {
      const { manifest } = await verifyManifest(await response.text(), {
        root: this.root,
        app: APP,
        channel: CHANNEL,
        now: new Date(),
      });
      this.etag = response.headers.get('etag');
      this.entries = new Map(manifest.models.map((m) => [m.name, m]));
    } else if (response.status !== 304) {
      throw new Error(`manifest: ${response.status} ${await response.text()}`);
    }
    const entry = this.entries.get(model);
    if (!entry) throw new Error(`the manifest has no model ${model}`);
    return entry;
  }

  /**
   * Runs scenarios side by side, one model each (its own releases, rollout, salt and seeded
   * draws): every device runs every model and sends one batch for all of them.
   */
  async run(list: ScenarioOptions[]): Promise<FleetReport> {
    const started = Date.now();
    const opts = this.opts;
    const random = mulberry32(opts.seed);
    const scenarios: ScenarioState[] = [];
    const operator = this.admin('operator');
    for (const input of list) {
      const s: Required<ScenarioOptions> = {
        stages: [100, 1000, 5000, 10000],
        ticksPerStage: 4,
        ticksAfterHalt: 16,
        forged: null,
        ...input,
      };
      await this.publish(s.model, CONTROL, s.seed * 2 + 1);
      await this.publish(s.model, CANDIDATE, s.seed * 2 + 2);
      await operator.promoteRelease(APP, CHANNEL, s.model, CONTROL);
      scenarios.push({
        s,
        random: mulberry32(s.seed),
        rolloutId: '',
        stage: 0,
        ticksInStage: 0,
        outcome: null,
        halt: null,
        firstBad: null,
        allBackAt: null,
        ackedEvents: 0,
        doneTick: 0,
      });
    }
    const byModel = new Map(scenarios.map((sc) => [sc.s.model, sc]));
    const sinceSec = Math.floor(Date.now() / 1000) - 60;

    const [minCheck, maxCheck] = opts.checkMinutes;
    const devices: Device[] = this.installs.map(({ id, key, from, forger, ...kind }) => {
      const checkEvery = minCheck + random() * (maxCheck - minCheck);
      return {
        id,
        key,
        from,
        forger,
        ...kind,
        active: new Map(scenarios.map((sc) => [sc.s.model, CONTROL])),
        checkEvery,
        nextCheck: random() * checkEvery,
        sendEvery: opts.sendEveryMinutes,
        nextSend: random() * opts.sendEveryMinutes,
        acc: new Map(),
        outbox: [],
        ranCandidate: new Set(),
      };
    });
    let simNow = 0;
    let tick = 0;
    const counts = {
      generated: 0,
      acknowledged: 0,
      resent: 0,
      answeredDuplicate: 0,
      retried: 0,
      unexpectedDuplicate: 0,
    };

    const draw = (device: Device, minutes: number) => {
      const n = Math.round(opts.inferencesPerMinute * minutes);
      if (n === 0) return;
      for (const sc of scenarios) {
        const model = sc.s.model;
        const version = device.active.get(model)!;
        const forging = device.forger && sc.s.forged !== null;
        const p = forging
          ? forgedProfile(sc.s.forged!, version === CANDIDATE)
          : version === CANDIDATE &&
              (!sc.s.candidate.only || sc.s.candidate.only.browser === device.segment.browser)
            ? sc.s.candidate
            : HEALTHY;
        const errorRate = device.flaky && !forging ? Math.max(p.errorRate, FLAKY_ERROR_RATE) : p.errorRate;
        const medianMs = p.latencyMedianMs * (forging ? 1 : device.speed);
        const r = sc.random;
        let perModel = device.acc.get(model);
        if (!perModel) {
          perModel = new Map();
          device.acc.set(model, perModel);
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
    };

    const makeBatch = (device: Device): TelemetryBatch | null => {
      const records: TelemetryRecord[] = [];
      for (const [model, perModel] of device.acc) {
        for (const [version, acc] of perModel) {
          if (acc.inferences + acc.errors === 0) continue;
          records.push({
            model,
            version,
            backend: device.backend,
            role: 'active',
            segment: device.segment,
            inferences: acc.inferences,
            errors: acc.errors > 0 ? { E_HEALTH_CHECK: acc.errors } : {},
            latencyMs: acc.latency,
            downloadBytes: 0,
            downloadMs: 0,
            features: [{ name: 'energy', counts: acc.energy }],
          });
        }
      }
      device.acc.clear();
      if (records.length === 0) return null;
      const end = Date.now();
      return {
        schema: 1,
        batchId: crypto.randomUUID(),
        deviceId: device.id,
        app: APP,
        channel: CHANNEL,
        runtimeVersion: '0.1.0',
        windowStart: new Date(end - device.sendEvery * 60_000).toISOString(),
        windowEnd: new Date(end).toISOString(),
        dropped: 0,
        records,
      };
    };

    const post = async (
      device: Device,
      batch: TelemetryBatch,
    ): Promise<{ status: number; duplicate: boolean }> => {
      try {
        const body = new TextEncoder().encode(JSON.stringify(batch));
        const answer = await postBytes(
          `${this.server.url}/v1/telemetry`,
          body,
          {
            'content-type': 'application/json',
            'idempotency-key': batch.batchId,
            [TELEMETRY_SIGNATURE_HEADER]: await signTelemetryBody(device.key, body),
          },
          device.from,
        );
        const parsed = (() => {
          try {
            return JSON.parse(answer.text) as { status?: string };
          } catch {
            return {};
          }
        })();
        return { status: answer.status, duplicate: parsed.status === 'duplicate' };
      } catch {
        return { status: 0, duplicate: false };
      }
    };

    const flush = async () => {
      const queue = devices.filter((d) => d.outbox.length > 0);
      const resends: Array<[Device, TelemetryBatch]> = [];
      let next = 0;
      const worker = async () => {
        while (next < queue.length) {
          const device = queue[next++]!;
          while (device.outbox.length > 0) {
            const batch = device.outbox[0]!;
            const answer = await post(device, batch);
            if (answer.status !== 202) {
              counts.retried += 1; // kept, sent again next tick (as the runtime's outbox does)
              break;
            }
            device.outbox.shift();
            if (answer.duplicate) counts.unexpectedDuplicate += 1;
            counts.acknowledged += 1;
            for (const r of batch.records) {
              const sc = byModel.get(r.model)!;
              sc.ackedEvents += r.inferences + (r.errors.E_HEALTH_CHECK ?? 0);
              if (!sc.firstBad && r.version === CANDIDATE) sc.firstBad = { atMs: Date.now(), tick };
            }
            if (random() < opts.resendShare) resends.push([device, batch]);
          }
        }
      };
      await Promise.all(Array.from({ length: opts.concurrency }, worker));
      // Responses "lost" on the way back: the device sends again; the server must say duplicate.
      for (const [device, batch] of resends) {
        const answer = await post(device, batch);
        counts.resent += 1;
        if (answer.status === 202 && answer.duplicate) counts.answeredDuplicate += 1;
      }
    };

    const rolloutState = async (id: string) => {
      const response = await fetch(`${this.server.url}/v1/admin/rollouts/${id}`, {
        headers: { authorization: `Bearer ${this.tokens.viewer}` },
      });
      return (await response.json()) as {
        state: string;
        shareBps: number;
        reason: string | null;
        updatedAt: string;
      };
    };

    // Every device reports once on the control first: the server counts an install for a rollout
    // only if it saw the install before the rollout started (canary/evidence.ts).
    for (const device of devices) {
      draw(device, opts.sendEveryMinutes);
      const batch = makeBatch(device);
      if (batch) {
        device.outbox.push(batch);
        counts.generated += 1;
      }
    }
    await flush();
    for (const sc of scenarios) {
      const rollout = await operator.createRollout({
        app: APP,
        channel: CHANNEL,
        model: sc.s.model,
        release: CANDIDATE,
        shareBps: sc.s.stages[0]!,
      });
      sc.rolloutId = rollout.id;
    }

    while (scenarios.some((sc) => sc.outcome === null)) {
      tick += 1;
      simNow += opts.tickMinutes;
      const entries = new Map<string, ModelEntry>();
      for (const sc of scenarios) entries.set(sc.s.model, await this.modelEntry(sc.s.model));
      for (const device of devices) {
        let from = simNow - opts.tickMinutes;
        while (device.nextCheck <= simNow) {
          draw(device, device.nextCheck - from);
          from = device.nextCheck;
          for (const sc of scenarios) {
            const choice = await chooseRelease(entries.get(sc.s.model)!, device.id);
            const version = choice.active?.version ?? CONTROL;
            device.active.set(sc.s.model, version);
            if (version === CANDIDATE && !sc.halt) device.ranCandidate.add(sc.s.model);
          }
          device.nextCheck += device.checkEvery;
        }
        draw(device, simNow - from);
        if (device.nextSend <= simNow) {
          const batch = makeBatch(device);
          if (batch) {
            device.outbox.push(batch);
            counts.generated += 1;
          }
          device.nextSend += device.sendEvery;
        }
      }
      await flush();

      const toPromote: ScenarioState[] = [];
      for (const sc of scenarios) {
        if (sc.outcome !== null) continue;
        const state = await rolloutState(sc.rolloutId);
        if (!sc.halt && state.state === 'halted') {
          sc.halt = {
            atMs: Date.parse(state.updatedAt),
            tick,
            shareBps: sc.s.stages[sc.stage]!,
            reason: state.reason,
          };
          opts.log(`${sc.s.name}: halted at tick ${tick} (${sc.s.stages[sc.stage]} bps): ${state.reason}`);
        }
        if (sc.halt) {
          if (sc.allBackAt === null && devices.every((d) => d.active.get(sc.s.model) !== CANDIDATE))
            sc.allBackAt = simNow;
          if (tick - sc.halt.tick >= sc.s.ticksAfterHalt || sc.allBackAt !== null)
            this.finish(sc, 'halted', tick);
          continue;
        }
        sc.ticksInStage += 1;
        if (sc.ticksInStage < sc.s.ticksPerStage) continue;
        if (sc.stage < sc.s.stages.length - 1) {
          sc.stage += 1;
          sc.ticksInStage = 0;
          await operator.setShare(sc.rolloutId, sc.s.stages[sc.stage]!);
          opts.log(`${sc.s.name}: tick ${tick}, share ${sc.s.stages[sc.stage]} bps`);
        } else toPromote.push(sc);
      }
      if (toPromote.length > 0) {
        // The analysis runs on its own timer: give it one more pass over the last batches.
        await new Promise((r) => setTimeout(r, 1200));
        for (const sc of toPromote) {
          const last = await rolloutState(sc.rolloutId);
          if (last.state === 'halted') {
            sc.halt = {
              atMs: Date.parse(last.updatedAt),
              tick,
              shareBps: sc.s.stages[sc.stage]!,
              reason: last.reason,
            };
            this.finish(sc, 'halted', tick);
          } else {
            await operator.promote(sc.rolloutId);
            this.finish(sc, 'promoted', tick);
          }
        }
      }
    }

    // Whatever is still queued is delivered before counting (devices keep batches until acknowledged).
    for (const device of devices) {
      const batch = makeBatch(device);
      if (batch) {
        device.outbox.push(batch);
        counts.generated += 1;
      }
    }
    for (let attempt = 0; attempt < 30 && devices.some((d) => d.outbox.length > 0); attempt++) {
      await flush();
      if (devices.some((d) => d.outbox.length > 0)) await new Promise((r) => setTimeout(r, 1000));
    }
    await new Promise((r) => setTimeout(r, 300)); // webhook delivery is asynchronous

    const reports: ScenarioReport[] = [];
    for (const sc of scenarios) {
      const fleet = (await (
        await fetch(
          `${this.server.url}/v1/admin/fleet?app=${APP}&channel=${CHANNEL}&model=${sc.s.model}&since=${sinceSec}`,
          {
            headers: { authorization: `Bearer ${this.tokens.viewer}` },
          },
        )
      ).json()) as {
        versions: Array<{
          version: string;
          inferences: number;
          errors: number;
          latencyMs: { p95: number | null };
        }>;
      };
      const serverEvents = fleet.versions.reduce((n, v) => n + v.inferences + v.errors, 0);
      reports.push({
        scenario: sc.s.name,
        model: sc.s.model,
        candidate: sc.s.candidate.name,
        forged: sc.s.forged,
        devices: devices.length,
        seed: sc.s.seed,
        stages: sc.s.stages,
        outcome: sc.outcome!,
        haltedAtShareBps: sc.halt?.shareBps ?? null,
        haltReason: sc.halt?.reason ?? null,
        webhookReceived: this.webhooks.rollouts.has(sc.rolloutId),
        shareOfFleetRanCandidate:
          devices.filter((d) => d.ranCandidate.has(sc.s.model)).length / devices.length,
        timeToHalt:
          sc.halt && sc.firstBad
            ? {
                realMs: Math.max(0, sc.halt.atMs - sc.firstBad.atMs),
                simulatedMinutes: (sc.halt.tick - sc.firstBad.tick) * opts.tickMinutes,
              }
            : null,
        allBackOnControlAfterMinutes:
          sc.halt && sc.allBackAt !== null ? sc.allBackAt - sc.halt.tick * opts.tickMinutes : null,
        events: {
          acknowledged: sc.ackedEvents,
          server: serverEvents,
          duplicatesCounted: serverEvents - sc.ackedEvents,
        },
        p95LatencyMs: Object.fromEntries(fleet.versions.map((v) => [v.version, v.latencyMs.p95])),
        ticks: sc.doneTick,
      });
    }
    return {
      devices: devices.length,
      forgedDevices: devices.filter((d) => d.forger).length,
      networks: new Set(devices.map((d) => d.from.split('.').slice(0, 3).join('.'))).size,
      seed: opts.seed,
      tickMinutes: opts.tickMinutes,
      ticks: tick,
      wallMs: Date.now() - started,
      batches: {
        generated: counts.generated,
        acknowledged: counts.acknowledged,
        lost: counts.generated - counts.acknowledged,
        resent: counts.resent,
        answeredDuplicate: counts.answeredDuplicate,
        retriedAfterRefusal: counts.retried,
        duplicatesCounted:
          reports.reduce((n, r) => n + r.events.duplicatesCounted, 0) + counts.unexpectedDuplicate,
      },
      scenarios: reports,
    };
  }

  private finish(sc: ScenarioState, outcome: ScenarioReport['outcome'], tick: number) {
    sc.outcome = outcome;
    sc.doneTick = tick;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      devices: { type: 'string', default: '10000' },
      seed: { type: 'string', default: '1' },
      out: { type: 'string', default: resolve(import.meta.dirname, 'results.json') },
      'forged-share': { type: 'string', default: '0.05' },
    },
  });
  const devices = Number(values.devices);
  const seed = Number(values.seed);
  const forgedShare = Number(values['forged-share']);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const fleet = await Fleet.start({ devices, seed, log, forgedShare });
  let report: FleetReport;
  try {
    report = await fleet.run([
      {
        name: 'good release staged 1% -> 10% -> 50% -> 100%',
        model: 'good',
        seed: seed + 1,
        candidate: HEALTHY,
      },
      { name: 'bad canary: slower', model: 'slower', seed: seed + 2, candidate: REGRESSIONS.slower },
      { name: 'bad canary: more errors', model: 'errors', seed: seed + 3, candidate: REGRESSIONS.errors },
      { name: 'bad canary: drifted inputs', model: 'drift', seed: seed + 4, candidate: REGRESSIONS.drift },
      {
        name: 'bad canary: more errors on Firefox only',
        model: 'firefox',
        seed: seed + 7,
        candidate: FIREFOX_ONLY,
      },
      // The forging devices (--forged-share of the fleet) lie about these two models only.
      {
        name: `good release, ${forgedShare * 100}% of devices forge bad telemetry`,
        model: 'forged-bad',
        seed: seed + 5,
        candidate: HEALTHY,
        forged: 'bad',
      },
      {
        name: `bad canary: slower, ${forgedShare * 100}% of devices forge good telemetry`,
        model: 'forged-good',
        seed: seed + 6,
        candidate: REGRESSIONS.slower,
        forged: 'good',
      },
    ]);
  } finally {
    await fleet.stop();
  }
  const out = { node: process.version, at: new Date().toISOString(), ...report };
  await writeFile(values.out!, `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  });
}
