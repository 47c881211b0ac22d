import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  countFeature,
  EdgeshipError,
  GATE_VS_PRODUCTION,
  generateSigningKey,
  type MonitoredFeature,
  mulberry32,
  normalizeCounts,
  reduceFeature,
} from '@edgeship/protocol';
import { type NamedTensors, runWithContract } from '@edgeship/runtime/contract';
import { AdminClient, governance } from '@edgeship/update-server';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../../test/support/server.ts';
import { TINY_CONTRACT, tinyOnnxModel } from '../../../test/support/tiny-models.ts';
import { edgeship } from '../../test-data/run-cli.ts';
import { GateError } from '../validate/gate-error.ts';
import { fetchProduction } from './production.ts';
import { type PublishOptions, publishModel } from './publish.ts';

const APP = 'gates-app';
const CHANNEL = 'stable';
const FRAMES = 40;

/** Frames of 4 values in [-3, 3), labelled with the index of the largest: identity's argmax. */
function labelledFrames(seed: number): { frames: number[][]; labels: number[] } {
  const random = mulberry32(seed);
  const frames = Array.from({ length: FRAMES }, () => Array.from({ length: 4 }, () => random() * 6 - 3));
  return { frames, labels: frames.map((x) => x.indexOf(Math.max(...x))) };
}

async function writeFrames(dir: string, seed: number, labelled: boolean): Promise<number[][]> {
  await mkdir(dir, { recursive: true });
  const { frames, labels } = labelledFrames(seed);
  const file = {
    frames: frames.map((data) => ({ input: { dims: [1, 4], data } })),
    ...(labelled ? { labels } : {}),
  };
  await writeFile(join(dir, 'frames.json'), JSON.stringify(file));
  return frames;
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'edgeship-gates-'));
  await writeFile(join(work, 'identity.onnx'), tinyOnnxModel('identity'));
  await writeFile(join(work, 'negate.onnx'), tinyOnnxModel('negate'));
  await writeFrames(join(work, 'held-out'), 11, true);
});

describe("the gate against the channel's production release, on a real server", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.stop();
  });

  const publish = (model: string, version: string, extra: Partial<PublishOptions> = {}) =>
    publishModel({
      model: join(work, model),
      name: 'classes',
      version,
      contract: TINY_CONTRACT,
      gateData: join(work, 'held-out'),
      server: t.server.url,
      token: t.server.tokens!.publisher,
      publisherKey: t.publisherKey,
      app: APP,
      channel: CHANNEL,
      ...extra,
    });

  it('refuses a worse candidate, accepts an equal one, and signs what it checked', async () => {
    // The channel's first release: no production to fall below, and the release says so.
    const first = await publish('identity.onnx', '1.0.0', { budget: { minAccuracy: 0.9 } });
    expect(first.gates?.against).toEqual({ app: APP, channel: CHANNEL, version: null });
    await t.operator.promoteRelease(APP, CHANNEL, 'classes', '1.0.0');
    await governance(t.admin).setPolicy(APP, CHANNEL, {
      requireApproval: false,
      approverNotPublisher: false,
      requireGates: [GATE_VS_PRODUCTION],
    });

    // -x ranks every class backwards: as good as its own float source, far below production.
    const before = (await t.viewer.listReleases('classes')).releases.length;
    const worse = await publish('negate.onnx', '1.1.0').catch((error: unknown) => error);
    expect(worse).toBeInstanceOf(GateError);
    const report = (worse as GateError).report!;
    const gate = report.gates.find((g) => g.name === GATE_VS_PRODUCTION)!;
    expect(gate).toMatchObject({ passed: false, limit: 0.01 });
    expect(gate.value).toBeGreaterThan(0.9); // production 100%, the candidate 0%
    expect(gate.message).toMatch(/vs production 1\.0\.0 100\.0%/);
    expect(report.gates.find((g) => g.name === 'maxAccuracyDrop')?.passed).toBe(true);
    expect((await t.viewer.listReleases('classes')).releases.length).toBe(before);

    // The same under --min-accuracy alone, with no channel to compare with.
    const floor = await publish('negate.onnx', '1.1.0', {
      app: undefined,
      channel: undefined,
      budget: { minAccuracy: 0.5 },
    }).catch((error: unknown) => error);
    expect((floor as GateError).report?.gates.find((g) => g.name === 'min-accuracy')).toMatchObject({
      passed: false,
      value: 0,
      limit: 0.5,
    });

    // An equal candidate passes, and the signed release records the gates and their numbers.
    const equal = await publish('identity.onnx', '1.2.0', { budget: { minAccuracy: 0.9 } });
    expect(equal.validation?.production).toEqual({ version: '1.0.0', accuracy: 1 });
    expect(equal.metrics.productionAccuracy).toBe(1);
    const signed = (await t.viewer.getRelease('classes', '1.2.0')).signed.signed;
    expect(signed.gates?.against).toEqual({ app: APP, channel: CHANNEL, version: '1.0.0' });
    expect(signed.gates?.frames).toBe(FRAMES);
    expect(signed.gates?.results).toEqual(
      expect.arrayContaining([
        { name: GATE_VS_PRODUCTION, value: 0, limit: 0.01 },
        { name: 'min-accuracy', value: 1, limit: 0.9 },
      ]),
    );
    // The channel's policy lets it in; one published without the gate data is kept out.
    await t.operator.promoteRelease(APP, CHANNEL, 'classes', '1.2.0');
    await publish('identity.onnx', '1.3.0', { gateData: undefined });
    await expect(t.operator.promoteRelease(APP, CHANNEL, 'classes', '1.3.0')).rejects.toMatchObject({
      code: 'E_POLICY',
    });
  });

  it('checks the production release it downloads: chunks against their hashes, the key set against the root', async () => {
    const ref = { app: APP, channel: CHANNEL, model: 'classes' };
    const token = t.server.tokens!.publisher;
    const verified = await fetchProduction(new AdminClient(t.server.url, token), ref, t.server.trustedRoot);
    expect(verified?.version).toBe('1.2.0');
    expect(verified?.files.get('model.onnx')).toEqual(Uint8Array.from(tinyOnnxModel('identity')));
    // A server (or a path to it) that alters a chunk: refused before anything runs it.
    const tampering: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!String(input instanceof Request ? input.url : input).includes('/v1/chunks/')) return response;
      const bytes = new Uint8Array(await response.arrayBuffer());
      bytes[bytes.length - 1]! ^= 1;
      return new Response(bytes, { status: 200 });
    };
    await expect(fetchProduction(new AdminClient(t.server.url, token, tampering), ref)).rejects.toMatchObject(
      { code: 'E_HASH' },
    );
    // A key set the pinned root did not sign: refused too.
    const stranger = await generateSigningKey();
    const otherRoot = { keys: [{ keyId: stranger.keyId, publicKey: stranger.publicKey }], threshold: 1 };
    await expect(
      fetchProduction(new AdminClient(t.server.url, token), ref, otherRoot),
    ).rejects.toBeInstanceOf(EdgeshipError);
  });
});

describe('the gate flags of edgeship publish', () => {
  it('--gate-data with --min-accuracy refuses a worse model: exit 1, E_GATE, nothing signed', async () => {
    await writeFile(join(work, 'publisher.key.json'), JSON.stringify(await generateSigningKey()));
    await writeFile(join(work, 'tiny.contract.json'), JSON.stringify(TINY_CONTRACT));
    const args = (model: string) => [
      'publish',
      model,
      '--name',
      'classes',
      '--version',
      '1.0.0',
      '--contract',
      'tiny.contract.json',
      '--gate-data',
      'held-out',
      '--min-accuracy',
      '0.9',
      '--publisher-key',
      'publisher.key.json',
      '--dry-run',
      '--json',
    ];
    const worse = await edgeship(args('negate.onnx'), work);
    expect(worse.code).toBe(1);
    expect(worse.stderr).toMatch(/E_GATE: validation failed: min-accuracy: accuracy 0\.0% < minimum 90\.0%/);
    const good = await edgeship(args('identity.onnx'), work);
    expect(good.code).toBe(0);
    const result = JSON.parse(good.stdout);
    expect(result.gates.results).toContainEqual({ name: 'min-accuracy', value: 1, limit: 0.9 });
    expect(result.gates.against).toBeUndefined();
  });
});

describe('the drift reference of a release with pre- and postprocessing', () => {
  it('is what a device counts: input features before preprocessing, output features after postprocessing', async () => {
    const frames = await writeFrames(join(work, 'reference'), 12, false);
    const contract = {
      ...TINY_CONTRACT,
      preprocessing: [{ op: 'scale' as const, tensor: 'input', mul: 2, add: 0 }],
      postprocessing: [{ op: 'softmax' as const, tensor: 'output' }],
      monitoring: {
        features: [
          {
            name: 'top',
            source: { from: 'output' as const, tensor: 'output', reduce: 'max' as const },
            binEdges: [0.5, 0.9, 1.5],
          },
          {
            name: 'level',
            source: { from: 'input' as const, tensor: 'input', reduce: 'rms' as const },
            binEdges: [1, 2],
          },
        ],
      },
    };
    const result = await publishModel({
      model: join(work, 'identity.onnx'),
      name: 'softmaxed',
      version: '1.0.0',
      contract,
      referenceData: join(work, 'reference'),
      publisherKey: await generateSigningKey(),
      dryRun: true,
    });
    const [top, level] = result.signed.signed.monitoring.features;
    // Reference data without gate data: no gates ran, and the lineage names the reference's data.
    expect(result.gates).toBeNull();
    expect(result.lineage.datasetHash).toBeUndefined();
    expect(result.lineage.parameters.referenceDatasetHash).toMatch(/^[0-9a-f]{64}$/);

    // By hand: softmax(2x) of each frame, its max; the caller's x, its RMS.
    const softmaxMax = (x: number[]) => {
      const e = x.map((v) => Math.exp(2 * v - 2 * Math.max(...x)));
      return Math.max(...e) / e.reduce((a, b) => a + b, 0);
    };
    const rms = (x: number[]) => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);
    expect(top!.reference).toEqual(histogram(top!, frames.map(softmaxMax)));
    expect(level!.reference).toEqual(histogram(level!, frames.map(rms)));
    // A softmax never reaches 1.5; the raw outputs of these frames often do.
    expect(top!.reference[3]).toBe(0);
    expect(frames.some((x) => Math.max(...x) >= 1.5)).toBe(true);

    // And what the runtime computes on the same frames, through its own pipeline on onnxruntime.
    const session = await ort.InferenceSession.create(tinyOnnxModel('identity'));
    const engine = {
      config: { backend: 'cpu' as const },
      inputNames: session.inputNames,
      outputNames: session.outputNames,
      run: async (inputs: NamedTensors) => {
        const out = await session.run({
          input: new ort.Tensor('float32', inputs.input!.data as Float32Array, inputs.input!.dims),
        });
        return { output: { data: out.output!.data as Float32Array, dims: [...out.output!.dims] } };
      },
      dispose: () => session.release(),
    };
    const device: number[] = [];
    for (const x of frames) {
      const outputs = await runWithContract(engine, contract, {
        input: { data: Float32Array.from(x), dims: [1, 4] },
      });
      device.push(reduceFeature('max', Array.from(outputs.output!.data as Float32Array)));
    }
    await engine.dispose();
    expect(top!.reference).toEqual(histogram(top!, device));
  });
});

function histogram(feature: MonitoredFeature, values: number[]): number[] {
  const counts = new Array<number>(feature.binEdges.length + 1).fill(0);
  for (const v of values) countFeature(counts, feature, v);
  return normalizeCounts(counts);
}
