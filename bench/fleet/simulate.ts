import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  chooseRelease,
  describeFile,
  generateInstallKey,
  type ModelEntry,
  mulberry32,
  type Release,
  type SigningKeyPair,
  signRelease,
  type TrustedRoot,
  verifyManifest,
} from '@edgeship/protocol';
import { AdminClient } from '@edgeship/update-server/admin-client';
import { SOURCE_NODE_ARGS } from '../../test/support/node-args.ts';
import { type ServerProcess, spawnServer } from '../../test/support/server-process.ts';
import { webhookReceiver } from '../../test/support/webhook-receiver.ts';
import type { BootstrapTokens } from '../../update-server/src/auth/tokens.ts';
import { uniformMonitoring } from '../../update-server/src/telemetry/testing.ts';
import {
  type Device,
  deviceKind,
  drawInferences,
  FIREFOX_ONLY,
  HEALTHY,
  type Install,
  postBatch,
  REGRESSIONS,
  takeBatch,
} from './device.ts';
import {
  type BatchCounts,
  type FleetReport,
  fleetReport,
  type ScenarioReport,
  scenarioReport,
} from './report.ts';
import {
  APP,
  CANDIDATE,
  CHANNEL,
  CONTROL,
  Scenario,
  type ScenarioOptions,
  type ScheduleSettings,
} from './scenario.ts';

/**
 * A simulated fleet against a real update-server process. Each device has a random id, checks
 * for updates on its own schedule, picks its release with the protocol's chooseRelease from the
 * real signed manifest, runs inferences whose latency, errors and feature values are drawn from
 * its release's distribution (device.ts), and sends telemetry batches (kept until acknowledged,
 * retried). Time is compressed: one tick is `tickMinutes` of simulated time, run as fast as the
 * server acknowledges; the server's canary analysis runs on its own (real-time) timer.
 * Scenarios (scenario.ts) stage one model each; report.ts says what happened.
 */

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
  /** ...and this share of devices is flaky, failing 20% of inferences on every release. */
  flakyShare?: number;
  log?: (line: string) => void;
}

interface Webhooks {
  url: string;
  rollouts: Set<string>;
  close(): Promise<void>;
}

async function rolloutWebhooks(): Promise<Webhooks> {
  const rollouts = new Set<string>();
  const hooks = await webhookReceiver<{ rollout?: { id?: string } }>((event) => {
    if (event.rollout?.id) rollouts.add(event.rollout.id);
  });
  return { url: hooks.url, rollouts, close: hooks.close };
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
    readonly installs: Install[],
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
    const webhooks = await rolloutWebhooks();
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
    // A generous grace: a --cpu-prof profile (FLEET_SERVER_NODE_ARGS) is written on a clean exit.
    await this.server.stop(60_000);
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
    const operator = this.admin('operator');
    const viewer = this.admin('viewer');
    const scenarios: Scenario[] = [];
    for (const input of list) {
      const sc = new Scenario(input);
      await this.publish(sc.model, CONTROL, sc.s.seed * 2 + 1);
      await this.publish(sc.model, CANDIDATE, sc.s.seed * 2 + 2);
      await operator.promoteRelease(APP, CHANNEL, sc.model, CONTROL);
      scenarios.push(sc);
    }
    const byModel = new Map(scenarios.map((sc) => [sc.model, sc]));
    const sinceSec = Math.floor(Date.now() / 1000) - 60;
    const devices = this.devices(random, scenarios);
    const counts: BatchCounts = {
      generated: 0,
      acknowledged: 0,
      resent: 0,
      answeredDuplicate: 0,
      resendRefused: 0,
      retried: 0,
      unexpectedDuplicate: 0,
    };
    let simNow = 0;
    let tick = 0;
    const draw = (device: Device, minutes: number) =>
      drawInferences(device, scenarios, Math.round(opts.inferencesPerMinute * minutes));
    const queueBatch = (device: Device) => {
      const batch = takeBatch(device, APP, CHANNEL);
      if (!batch) return;
      device.outbox.push(batch);
      counts.generated += 1;
    };
    const flush = () =>
      this.flush(devices, counts, random, (batch) => {
        for (const r of batch.records) {
          const sc = byModel.get(r.model)!;
          sc.ackedEvents += r.inferences + (r.errors.E_HEALTH_CHECK ?? 0);
          if (!sc.firstBad && r.version === CANDIDATE) sc.firstBad = { atMs: Date.now(), tick };
        }
      });

    // Every device reports once on the control first: the server counts an install for a rollout
    // only if it saw the install before the rollout started (canary/evidence.ts).
    for (const device of devices) {
      draw(device, opts.sendEveryMinutes);
      queueBatch(device);
    }
    await flush();
    for (const sc of scenarios) {
      const rollout = await operator.createRollout({
        app: APP,
        channel: CHANNEL,
        model: sc.model,
        release: CANDIDATE,
        shareBps: sc.shareBps,
      });
      sc.rolloutId = rollout.id;
      if (sc.s.staging === 'schedule')
        await operator.scheduleRollout(rollout.id, { stagesBps: sc.s.stages, ...sc.s.schedule });
      sc.observe(rollout);
    }

    while (scenarios.some((sc) => sc.outcome === null)) {
      tick += 1;
      simNow += opts.tickMinutes;
      const entries = new Map<string, ModelEntry>();
      for (const sc of scenarios) entries.set(sc.model, await this.modelEntry(sc.model));
      for (const device of devices) {
        let from = simNow - opts.tickMinutes;
        while (device.nextCheck <= simNow) {
          draw(device, device.nextCheck - from);
          from = device.nextCheck;
          for (const sc of scenarios) {
            const choice = await chooseRelease(entries.get(sc.model)!, device.id);
            const version = choice.active?.version ?? CONTROL;
            device.active.set(sc.model, version);
            if (version === CANDIDATE && !sc.halt) device.ranCandidate.add(sc.model);
          }
          device.nextCheck += device.checkEvery;
        }
        draw(device, simNow - from);
        if (device.nextSend <= simNow) {
          queueBatch(device);
          device.nextSend += device.sendEvery;
        }
      }
      await flush();

      const toPromote: Scenario[] = [];
      for (const sc of scenarios) {
        if (sc.outcome !== null) continue;
        const rollout = await viewer.getRollout(sc.rolloutId);
        const before = sc.shareBps;
        if (sc.noteHalt(rollout, tick))
          opts.log(`${sc.s.name}: halted at tick ${tick} (${sc.shareBps} bps): ${sc.halt!.reason}`);
        sc.observe(rollout);
        if (sc.shareBps !== before)
          opts.log(`${sc.s.name}: tick ${tick}, share ${sc.shareBps} bps (schedule)`);
        sc.account(devices, opts.tickMinutes, simNow);
        const next = sc.step(tick, simNow, devices, rollout);
        if (next === 'next-stage') {
          await operator.setShare(sc.rolloutId, sc.shareBps);
          opts.log(`${sc.s.name}: tick ${tick}, share ${sc.shareBps} bps`);
        } else if (next === 'promote') toPromote.push(sc);
      }
      if (toPromote.length > 0) {
        // The analysis runs on its own timer: give it one more pass over the last batches.
        await new Promise((r) => setTimeout(r, 1200));
        for (const sc of toPromote) {
          if (sc.noteHalt(await viewer.getRollout(sc.rolloutId), tick)) sc.finish('halted', tick);
          else {
            await operator.promote(sc.rolloutId);
            sc.finish('promoted', tick);
          }
        }
      }
    }

    // Whatever is still queued is delivered before counting (devices keep batches until acknowledged).
    for (const device of devices) queueBatch(device);
    for (let attempt = 0; attempt < 30 && devices.some((d) => d.outbox.length > 0); attempt++) {
      await flush();
      if (devices.some((d) => d.outbox.length > 0)) await new Promise((r) => setTimeout(r, 1000));
    }
    await new Promise((r) => setTimeout(r, 300)); // webhook delivery is asynchronous

    const reports: ScenarioReport[] = [];
    for (const sc of scenarios) {
      const fleet = await viewer.fleet({
        app: APP,
        channel: CHANNEL,
        model: sc.model,
        since: String(sinceSec),
      });
      reports.push(
        scenarioReport(
          sc,
          devices,
          fleet,
          this.webhooks.rollouts.has(sc.rolloutId),
          opts.tickMinutes,
          (opts.checkMinutes[0] + opts.checkMinutes[1]) / 2,
        ),
      );
    }
    return fleetReport({
      devices,
      seed: opts.seed,
      tickMinutes: opts.tickMinutes,
      ticks: tick,
      wallMs: Date.now() - started,
      counts,
      scenarios: reports,
    });
  }

  /** Fresh per-run device state over the fleet's installs: each its own check period and phase. */
  private devices(random: () => number, scenarios: Scenario[]): Device[] {
    const [minCheck, maxCheck] = this.opts.checkMinutes;
    return this.installs.map((install) => {
      const checkEvery = minCheck + random() * (maxCheck - minCheck);
      return {
        ...install,
        active: new Map(scenarios.map((sc) => [sc.model, CONTROL])),
        checkEvery,
        nextCheck: random() * checkEvery,
        sendEvery: this.opts.sendEveryMinutes,
        nextSend: random() * this.opts.sendEveryMinutes,
        acc: new Map(),
        outbox: [],
        ranCandidate: new Set(),
      };
    });
  }

  /**
   * Sends every device's outbox, `concurrency` devices at a time, in order, until one is refused
   * (kept for the next tick, as the runtime's outbox does); then resends a share of the
   * acknowledged batches (a lost response), which the server must answer as duplicates.
   */
  private async flush(
    devices: Device[],
    counts: BatchCounts,
    random: () => number,
    acknowledged: (batch: Device['outbox'][number]) => void,
  ): Promise<void> {
    const queue = devices.filter((d) => d.outbox.length > 0);
    const resends: Array<[Device, Device['outbox'][number]]> = [];
    let next = 0;
    const worker = async () => {
      while (next < queue.length) {
        const device = queue[next++]!;
        while (device.outbox.length > 0) {
          const batch = device.outbox[0]!;
          const answer = await postBatch(this.server.url, device, batch);
          if (answer.status !== 202) {
            counts.retried += 1;
            break;
          }
          device.outbox.shift();
          if (answer.duplicate) counts.unexpectedDuplicate += 1;
          counts.acknowledged += 1;
          acknowledged(batch);
          if (random() < this.opts.resendShare) resends.push([device, batch]);
        }
      }
    };
    await Promise.all(Array.from({ length: this.opts.concurrency }, worker));
    for (const [device, batch] of resends) {
      counts.resent += 1;
      // A refused resend (429 while the server is busy, or a dropped connection) is sent again,
      // as the runtime's outbox would; what matters is the answer once the server takes it.
      for (let attempt = 1; ; attempt++) {
        const answer = await postBatch(this.server.url, device, batch);
        if (answer.status === 202) {
          if (answer.duplicate) counts.answeredDuplicate += 1;
          break;
        }
        if (!isRetryable(answer.status) || attempt === RESEND_ATTEMPTS) {
          counts.resendRefused += 1;
          break;
        }
        await new Promise((r) => setTimeout(r, RESEND_BACKOFF_MS * attempt));
      }
    }
  }
}

const RESEND_ATTEMPTS = 4;
const RESEND_BACKOFF_MS = 250;
/** The runtime's sender drops a batch on these and retries anything else (runtime/src/telemetry/sender.ts). */
const PERMANENT_REFUSALS = new Set([400, 401, 404, 413, 415, 422]);
const isRetryable = (status: number) => !PERMANENT_REFUSALS.has(status);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      devices: { type: 'string', default: '10000' },
      seed: { type: 'string', default: '1' },
      out: { type: 'string', default: resolve(import.meta.dirname, 'results.json') },
      'forged-share': { type: 'string', default: '0.05' },
      // schedule: the server's rollout schedule widens each rollout on its verdicts (the product);
      // ticks: the simulator widens every 4 ticks whatever the verdict (before issue 19's hold).
      staging: { type: 'string', default: 'schedule' },
      // The schedule's segment hold (canary/schedule.ts SegmentHold); unset: the server's default.
      'segment-min-share': { type: 'string' },
      'segment-max-wait-minutes': { type: 'string', default: '3' },
    },
  });
  const devices = Number(values.devices);
  const seed = Number(values.seed);
  const forgedShare = Number(values['forged-share']);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const staging = values.staging === 'ticks' ? 'ticks' : 'schedule';
  // Stage time on the server's clock is real time, compressed here: a stage is held by samples
  // instead, about 4 ticks' worth at the 1% stage (3 inferences a minute per device, 5-minute
  // ticks); the segment hold waits real minutes (a tick takes seconds).
  const schedule: ScheduleSettings = {
    minStageMinutes: 0,
    minSamples: Math.round(devices * 0.01 * 3 * 5 * 4),
    segmentMaxWaitMinutes: Number(values['segment-max-wait-minutes']),
    ...(values['segment-min-share'] === undefined
      ? {}
      : { segmentMinShare: Number(values['segment-min-share']) }),
  };
  const staged = (o: ScenarioOptions): ScenarioOptions => ({ ...o, staging, schedule });
  const fleet = await Fleet.start({ devices, seed, log, forgedShare });
  let report: FleetReport;
  try {
    report = await fleet.run(
      (
        [
          {
            name: 'good release staged 1% -> 10% -> 50% -> 100%',
            model: 'good',
            seed: seed + 1,
            candidate: HEALTHY,
          },
          { name: 'bad canary: slower', model: 'slower', seed: seed + 2, candidate: REGRESSIONS.slower },
          { name: 'bad canary: more errors', model: 'errors', seed: seed + 3, candidate: REGRESSIONS.errors },
          {
            name: 'bad canary: drifted inputs',
            model: 'drift',
            seed: seed + 4,
            candidate: REGRESSIONS.drift,
          },
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
        ] as ScenarioOptions[]
      ).map(staged),
    );
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
