import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  canonicalJson,
  type ManifestEnvelope,
  type Release,
  type SegmentDimension,
  type SignedRelease,
  seededBytes,
  signManifest,
  signRelease,
} from '@edgeship/protocol';
import * as ortNode from 'onnxruntime-node';
import type { BrowserCommand, BrowserCommandContext } from 'vitest/node';
import { quantizeOnnx } from '../../cli/src/quantize/quantize-onnx.ts';
import { type BigModelSpec, bigModelContract, bigOnnxModel } from './big-model.ts';
import { bigModelInput } from './big-model-input.ts';
import { ChaosProxy, type ChaosRules, type ProxyLogEntry } from './chaos-proxy.ts';
import { SILERO_CONTRACT, sileroBytes, withDocString } from './models.ts';
import { makeRelease, startTestServer, type TestServer } from './server.ts';
import { StallingAssets } from './stalling-assets.ts';
import { TINY_CONTRACT, type TinyModel, tinyOnnxModel } from './tiny-models.ts';
import { testRelease } from './trust.ts';

/**
 * Commands that browser tests call through Vitest (`commands.x(...)`); they run in Node, where
 * they start real update servers and a chaos proxy in front of each.
 */

interface Fleet {
  server: TestServer;
  proxy: ChaosProxy;
  port: number;
}

// Keyed by project and name: the Chromium and Firefox projects run the same files at once.
const fleets = new Map<string, Fleet>();
const fleetKey = (ctx: BrowserCommandContext, name: string) => `${ctx.project.name}/${name}`;

export interface StartedServer {
  name: string;
  /** What devices use: the chaos proxy in front of the server. */
  url: string;
  trustedRoot: { keys: Array<{ keyId: string; publicKey: string }>; threshold: number };
}

export type ModelSource =
  | 'silero'
  | 'silero-int8'
  | { sileroDocString: string }
  | 'garbage'
  /** A four-number model (tiny-models.ts) with its own contract: a copy, or 1 / x. */
  | { tiny: TinyModel };

export interface PublishOptions {
  model?: string;
  version: string;
  source: ModelSource;
  app?: string;
  channel?: string;
  /** Promote to production directly. */
  promote?: boolean;
  rollout?: { shareBps: number; mode?: 'canary' | 'shadow' };
}

function fleet(ctx: BrowserCommandContext, name: string): Fleet {
  const found = fleets.get(fleetKey(ctx, name));
  if (!found) throw new Error(`no test server named ${name}`);
  return found;
}

async function modelBytes(source: ModelSource): Promise<Uint8Array> {
  if (typeof source === 'object' && 'tiny' in source) return tinyOnnxModel(source.tiny);
  if (source === 'silero') return sileroBytes();
  if (source === 'garbage') return seededBytes(300_000, 99);
  if (source === 'silero-int8') return (await quantizeOnnx(await sileroBytes(), { mode: 'int8' })).bytes;
  return withDocString(await sileroBytes(), source.sileroDocString);
}

const startEdgeshipServer: BrowserCommand<[name: string]> = async (ctx, name) => {
  const server = await startTestServer({ rateLimits: { publicPerMinute: 100_000, adminPerMinute: 100_000 } });
  const proxy = new ChaosProxy(server.server.url);
  await proxy.start();
  fleets.set(fleetKey(ctx, name), { server, proxy, port: Number(new URL(server.server.url).port) });
  return { name, url: proxy.url, trustedRoot: server.server.trustedRoot } satisfies StartedServer;
};

const stopEdgeshipServer: BrowserCommand<[name: string, opts?: { keepData?: boolean }]> = async (
  ctx,
  name,
  opts,
) => {
  const f = fleets.get(fleetKey(ctx, name));
  if (!f) return;
  await f.server.server.close();
  if (!opts?.keepData) {
    await f.proxy.stop();
    await rm(f.server.dataDir, { recursive: true, force: true });
    fleets.delete(fleetKey(ctx, name));
  }
};

/** Starts a stopped server again on its data directory and port (the proxy never moved). */
const restartEdgeshipServer: BrowserCommand<[name: string]> = async (ctx, name) => {
  const f = fleet(ctx, name);
  f.server = await startTestServer({
    dataDir: f.server.dataDir,
    port: f.port,
    rateLimits: { publicPerMinute: 100_000, adminPerMinute: 100_000 },
  });
  f.proxy.target = f.server.server.url;
};

const publishModel: BrowserCommand<[name: string, opts: PublishOptions]> = async (ctx, name, opts) => {
  const { server } = fleet(ctx, name);
  const bytes = await modelBytes(opts.source);
  const fields: Partial<Release> = {
    model: opts.model ?? 'vad',
    version: opts.version,
    ...(typeof opts.source === 'object' && 'tiny' in opts.source ? TINY_CONTRACT : SILERO_CONTRACT),
    quantization: { method: 'none' },
  };
  const signed = await makeRelease(server.publisherKey, bytes, fields);
  await server.publisher.uploadRelease(signed, new Map([['model.onnx', bytes]]));
  await server.publisher.registerRelease({ release: signed });
  const app = opts.app ?? 'demo-app';
  const channel = opts.channel ?? 'stable';
  if (opts.promote) await server.operator.promoteRelease(app, channel, fields.model!, opts.version);
  let rolloutId: string | null = null;
  if (opts.rollout) {
    rolloutId = (
      await server.operator.createRollout({
        app,
        channel,
        model: fields.model!,
        release: opts.version,
        shareBps: opts.rollout.shareBps,
        mode: opts.rollout.mode,
      })
    ).id;
  }
  return {
    rolloutId,
    size: bytes.length,
    chunks: signed.signed.files[0]!.chunks,
  };
};

/**
 * Publishes a real-sized generated model (big-model.ts), built here in Node so no 100 MB buffer
 * crosses the command channel; the browser downloads it from the server like any release.
 */
const publishBigModel: BrowserCommand<
  [name: string, opts: BigModelSpec & { model: string; version: string; promote?: boolean }]
> = async (ctx, name, opts) => {
  const { server } = fleet(ctx, name);
  const files = bigOnnxModel(opts);
  const release = await testRelease(Object.fromEntries(files), {
    model: opts.model,
    version: opts.version,
    ...bigModelContract(opts.width),
  });
  const signed = await signRelease(release, [server.publisherKey]);
  await server.publisher.uploadRelease(signed, files);
  await server.publisher.registerRelease({ release: signed });
  if (opts.promote) await server.operator.promoteRelease('demo-app', 'stable', opts.model, opts.version);
  return signed;
};

/** bigOnnxModel's output for bigModelInput, from onnxruntime-node reading the files from disk. */
const runBigModelInNode: BrowserCommand<[spec: BigModelSpec]> = async (_ctx, spec) => {
  const dir = await mkdtemp(join(tmpdir(), 'edgeship-big-'));
  try {
    for (const [path, bytes] of bigOnnxModel(spec)) await writeFile(join(dir, path), bytes);
    const session = await ortNode.InferenceSession.create(join(dir, 'model.onnx'));
    const input = new ortNode.Tensor('float32', bigModelInput(spec.width), [1, spec.width]);
    const out = await session.run({ input });
    await session.release();
    return Array.from(out.output!.data as Float32Array);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

const haltRollout: BrowserCommand<[name: string, rolloutId: string]> = async (ctx, name, rolloutId) => {
  await fleet(ctx, name).server.operator.halt(rolloutId, 'halted by a test');
};

/** Leaves segments out of a rollout, as the canary monitor does under an 'exclude' policy. */
const excludeSegments: BrowserCommand<
  [name: string, rolloutId: string, segments: Array<{ dimension: SegmentDimension; value: string }>]
> = async (ctx, name, rolloutId, segments) => {
  await fleet(ctx, name).server.server.service.excludeSegments(
    { name: 'test' },
    rolloutId,
    segments,
    'by a test',
  );
};

/** Starts a multi-arm rollout (an experiment's arms) of `model` on demo-app/stable; returns its id and salt. */
const startArmsRollout: BrowserCommand<
  [name: string, arms: Array<{ release: string; shareBps: number }>, model?: string]
> = async (ctx, name, arms, model = 'vad') => {
  const rollout = await fleet(ctx, name).server.server.service.createRollout(
    { name: 'test' },
    {
      app: 'demo-app',
      channel: 'stable',
      model,
      release: arms[0]!.release,
      shareBps: arms.reduce((n, a) => n + a.shareBps, 0),
      arms,
    },
  );
  return { rolloutId: rollout.id, salt: rollout.salt };
};

/** Re-splits a multi-arm rollout's shares, as Thompson allocation does. */
const setArms: BrowserCommand<
  [name: string, rolloutId: string, arms: Array<{ release: string; shareBps: number }>]
> = async (ctx, name, rolloutId, arms) => {
  await fleet(ctx, name).server.server.service.setArms({ name: 'test' }, rolloutId, arms);
};

const setChaos: BrowserCommand<[name: string, rules: ChaosRules]> = async (ctx, name, rules) => {
  fleet(ctx, name).proxy.setRules(rules);
};

const proxyLog: BrowserCommand<[name: string, opts?: { reset?: boolean }]> = async (ctx, name, opts) => {
  const { proxy } = fleet(ctx, name);
  const log: ProxyLogEntry[] = [...proxy.log];
  if (opts?.reset) proxy.log = [];
  return log;
};

/**
 * Attack material made from what the proxy has seen: an edited manifest, a replay of an older
 * version, or one that is correctly signed by the online key but already expired.
 */
const forgeManifest: BrowserCommand<
  [name: string, kind: 'tampered' | 'expired' | { replay: number }]
> = async (ctx, name, kind) => {
  const { proxy, server } = fleet(ctx, name);
  const newest = Math.max(...proxy.manifests.keys());
  if (typeof kind === 'object') {
    const old = proxy.manifests.get(kind.replay);
    if (!old) throw new Error(`the proxy has not seen manifest version ${kind.replay}`);
    return old;
  }
  const envelope = JSON.parse(proxy.manifests.get(newest)!) as ManifestEnvelope;
  if (kind === 'tampered') {
    envelope.signed.expiresAt = new Date(
      Date.parse(envelope.signed.expiresAt) + 365 * 86_400_000,
    ).toISOString();
    return canonicalJson(envelope);
  }
  const past = Date.now() - 3_600_000;
  const expired = await signManifest(
    {
      ...envelope.signed,
      version: newest + 1,
      issuedAt: new Date(past - 3_600_000).toISOString(),
      expiresAt: new Date(past).toISOString(),
    },
    [server.server.keys.online],
    envelope.keySet,
  );
  return canonicalJson(expired);
};

/** The server's fleet report (GET /v1/admin/fleet) as an operator's viewer token sees it. */
const fleetReport: BrowserCommand<
  [name: string, query: { app?: string; channel?: string; model?: string }]
> = async (ctx, name, query) => {
  const { app = 'demo-app', channel = 'stable', model } = query;
  return fleet(ctx, name).server.viewer.fleet({ app, channel, ...(model ? { model } : {}) });
};

/**
 * Waits until the proxy holds exactly `count` chunk responses open mid-body (ChaosRules
 * holdChunksAfter): the moment a download is known to be in flight, or known to be gone.
 */
const waitForHeldChunks: BrowserCommand<[name: string, count: number, timeoutMs?: number]> = async (
  ctx,
  name,
  count,
  timeoutMs = 20_000,
) => {
  const { proxy } = fleet(ctx, name);
  const deadline = Date.now() + timeoutMs;
  while (proxy.heldOpen !== count) {
    if (Date.now() > deadline) {
      throw new Error(
        `the proxy holds ${proxy.heldOpen} chunk responses open, not ${count}, after ${timeoutMs} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

const stallingAssets = new Map<string, StallingAssets>();

/** ORT's files on an origin that leaves the first `hold` requests unanswered (stalling-assets.ts). */
const startStallingAssets: BrowserCommand<[hold: number, releaseAfterMs?: number]> = async (
  _ctx,
  hold,
  releaseAfterMs,
) => {
  const assets = new StallingAssets(hold, releaseAfterMs);
  const url = await assets.start();
  stallingAssets.set(url, assets);
  return url;
};

const stallingAssetsLog: BrowserCommand<[url: string]> = async (_ctx, url) =>
  stallingAssets.get(url)?.requests ?? [];

const stopStallingAssets: BrowserCommand<[url: string]> = async (_ctx, url) => {
  await stallingAssets.get(url)?.stop();
  stallingAssets.delete(url);
};

export const edgeshipCommands = {
  startStallingAssets,
  stallingAssetsLog,
  stopStallingAssets,
  fleetReport,
  startEdgeshipServer,
  stopEdgeshipServer,
  restartEdgeshipServer,
  publishModel,
  haltRollout,
  excludeSegments,
  startArmsRollout,
  setArms,
  setChaos,
  proxyLog,
  forgeManifest,
  waitForHeldChunks,
  publishBigModel,
  runBigModelInNode,
};

declare module 'vitest/browser' {
  interface BrowserCommands {
    startStallingAssets(hold: number, releaseAfterMs?: number): Promise<string>;
    stallingAssetsLog(url: string): Promise<Array<{ path: string; held: boolean }>>;
    stopStallingAssets(url: string): Promise<void>;
    startEdgeshipServer(name: string): Promise<StartedServer>;
    stopEdgeshipServer(name: string, opts?: { keepData?: boolean }): Promise<void>;
    restartEdgeshipServer(name: string): Promise<void>;
    publishModel(
      name: string,
      opts: PublishOptions,
    ): Promise<{ rolloutId: string | null; size: number; chunks: Array<{ sha256: string; size: number }> }>;
    haltRollout(name: string, rolloutId: string): Promise<void>;
    excludeSegments(
      name: string,
      rolloutId: string,
      segments: Array<{ dimension: SegmentDimension; value: string }>,
    ): Promise<void>;
    startArmsRollout(
      name: string,
      arms: Array<{ release: string; shareBps: number }>,
      model?: string,
    ): Promise<{ rolloutId: string; salt: string }>;
    setArms(
      name: string,
      rolloutId: string,
      arms: Array<{ release: string; shareBps: number }>,
    ): Promise<void>;
    setChaos(name: string, rules: ChaosRules): Promise<void>;
    proxyLog(name: string, opts?: { reset?: boolean }): Promise<ProxyLogEntry[]>;
    forgeManifest(name: string, kind: 'tampered' | 'expired' | { replay: number }): Promise<string>;
    fleetReport(name: string, query: { app?: string; channel?: string; model?: string }): Promise<unknown>;
    waitForHeldChunks(name: string, count: number, timeoutMs?: number): Promise<void>;
    publishBigModel(
      name: string,
      opts: BigModelSpec & { model: string; version: string; promote?: boolean },
    ): Promise<SignedRelease>;
    runBigModelInNode(spec: BigModelSpec): Promise<number[]>;
  }
}
