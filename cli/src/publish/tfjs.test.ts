import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitCodeFor } from '../commands/output.ts';
import '@tensorflow/tfjs-backend-cpu';
import { generateSigningKey } from '@edgeship/protocol';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TONE_CONTRACT,
  TONE_MODEL,
  writeToneCalibration,
} from '../../../demo-pwa/models/tone/calibration.ts';
import { startTestServer, type TestServer } from '../../../test/support/server.ts';
import { edgeship } from '../../test-data/run-cli.ts';
import { tinyWeights } from '../../test-data/tiny-model.ts';
import { publishModel } from './publish.ts';
import { quantizeTfjs, readTfjsModel } from './tfjs.ts';

let dir: string;
const dense = tinyWeights(64, 32);
const bias = Float32Array.from({ length: 32 }, (_, i) => i / 32 - 0.5);
const steps = Int32Array.of(3, 1, 4);

beforeAll(async () => {
  // Quiet tfjs's "install tfjs-node" hint (tfjs-node does not install here).
  tf.enableProdMode();
  dir = await mkdtemp(join(tmpdir(), 'edgeship-tfjs-'));
  const shard = new Uint8Array(dense.byteLength + bias.byteLength + steps.byteLength);
  shard.set(new Uint8Array(dense.buffer), 0);
  shard.set(new Uint8Array(bias.buffer), dense.byteLength);
  shard.set(new Uint8Array(steps.buffer), dense.byteLength + bias.byteLength);
  await writeFile(join(dir, 'group1-shard1of1.bin'), shard);
  const modelJson = {
    format: 'graph-model',
    modelTopology: { node: [] },
    weightsManifest: [
      {
        paths: ['group1-shard1of1.bin'],
        weights: [
          { name: 'dense/kernel', shape: [64, 32], dtype: 'float32' },
          { name: 'dense/bias', shape: [32], dtype: 'float32' },
          { name: 'steps', shape: [3], dtype: 'int32' },
        ],
      },
    ],
  };
  await writeFile(join(dir, 'model.json'), JSON.stringify(modelJson));
});

/** Decodes the weights the way TensorFlow.js itself loads them, dequantization included. */
async function decoded(files: Map<string, Uint8Array>) {
  const json = JSON.parse(new TextDecoder().decode(files.get('model.json')!));
  const group = json.weightsManifest[0];
  const shard = files.get(group.paths[0])!;
  const buffer = shard.buffer.slice(shard.byteOffset, shard.byteOffset + shard.byteLength) as ArrayBuffer;
  const tensors = tf.io.decodeWeights(buffer, group.weights);
  return {
    specs: group.weights,
    values: Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, v.dataSync()])),
  };
}

describe('TensorFlow.js weight quantization', () => {
  it.each([
    ['uint8', 0.3],
    ['uint16', 0.55],
    ['float16', 0.55],
  ] as const)(
    '%s: tfjs decodes the weights back within one step; int weights stay as they are',
    async (mode, maxRatio) => {
      const { files, report } = quantizeTfjs(await readTfjsModel(join(dir, 'model.json')), mode);
      expect(report.weightsQuantized).toBe(2);
      const { specs, values } = await decoded(files);
      expect(specs[0].quantization.dtype).toBe(mode);
      expect(specs[2]).toEqual({ name: 'steps', shape: [3], dtype: 'int32' });
      const range = Math.max(...dense) - Math.min(...dense);
      const step = mode === 'uint8' ? range / 255 : mode === 'uint16' ? range / 65535 : 0.02;
      for (let i = 0; i < dense.length; i++)
        expect(Math.abs(values['dense/kernel']![i]! - dense[i]!)).toBeLessThanOrEqual(step);
      expect(Array.from(values.steps!)).toEqual([3, 1, 4]);
      const shardBytes = [...files].filter(([p]) => p !== 'model.json').reduce((n, [, b]) => n + b.length, 0);
      expect(shardBytes / (dense.byteLength + bias.byteLength + steps.byteLength)).toBeLessThan(maxRatio);
      expect(report.weightMeanAbsDiff).toBeGreaterThan(0);
    },
  );

  it('publishes a tfjs model as model.json plus its shard (dry run), refuses int8, and uint8 without calibration', async () => {
    const key = await generateSigningKey();
    const contract = {
      inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 64] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', 32] }],
    };
    const base = {
      model: join(dir, 'model.json'),
      name: 'tiny',
      version: '1.0.0',
      contract,
      publisherKey: key,
      dryRun: true,
    };
    const result = await publishModel({ ...base, quantize: 'none' });
    expect(result.signed.signed.format).toBe('tfjs');
    expect(result.signed.signed.quantization).toEqual({ method: 'none' });
    expect(result.signed.signed.files.map((f) => f.path)).toEqual(['model.json', 'group1-shard1of1.bin']);
    expect(result.upload).toBeNull();
    await expect(publishModel({ ...base, quantize: 'int8' }).catch(exitCodeFor)).resolves.toMatchObject({
      exitCode: 2,
    });
    // As for ONNX, a quantized model is published only once the gates ran it on calibration data.
    await expect(publishModel({ ...base, quantize: 'uint8' }).catch(exitCodeFor)).resolves.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('--calibration'),
    });
  });
});

describe('publishing the tone model (tfjs) through the CLI', () => {
  let t: TestServer;
  let work: string;
  let calibration: string;
  const publish = (version: string, extra: string[] = []) =>
    edgeship(
      [
        'publish',
        TONE_MODEL,
        '--name',
        'tone',
        '--version',
        version,
        '--quantize',
        'uint8',
        '--calibration',
        calibration,
        '--contract',
        TONE_CONTRACT,
        '--publisher-key',
        'publisher.key.json',
        '--json',
        ...extra,
      ],
      work,
      { EDGESHIP_SERVER: t.server.url, EDGESHIP_TOKEN: t.server.tokens!.publisher },
    );

  beforeAll(async () => {
    t = await startTestServer();
    work = await mkdtemp(join(tmpdir(), 'edgeship-tone-publish-'));
    await writeFile(join(work, 'publisher.key.json'), JSON.stringify(t.publisherKey));
    calibration = join(work, 'calibration');
    await mkdir(calibration);
    await writeToneCalibration(calibration);
  });

  afterAll(async () => {
    await t?.stop();
  });

  it('runs the float and the uint8 model through the gates and registers the run-level metrics', async () => {
    const run = await publish('1.0.0');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.validation.passed).toBe(true);
    expect(result.validation.gates.map((g: { name: string }) => g.name)).toEqual([
      'reference-loads',
      'candidate-loads',
      'reference-runs',
      'candidate-runs',
      'outputs-match',
      'finite',
      'maxMeanAbsDiff',
      'maxAccuracyDrop',
    ]);

    const { metrics, lineage } = await t.viewer.getRelease('tone', '1.0.0');
    // The fields an ONNX release with labelled calibration data carries, plus the weight-level one.
    expect(Object.keys(metrics).sort()).toEqual(
      [
        'accuracy',
        'calibrationFrames',
        'latencyMs',
        'loadMs',
        'maxAbsDiff',
        'meanAbsDiff',
        'referenceAccuracy',
        'referenceLatencyMs',
        'sizeBytes',
        'sizeRatio',
        'weightMeanAbsDiff',
      ].sort(),
    );
    expect(metrics.calibrationFrames).toBe(200);
    expect(metrics.meanAbsDiff).toBeGreaterThan(0);
    expect(metrics.meanAbsDiff).toBeLessThan(0.01);
    expect(metrics.maxAbsDiff).toBeGreaterThanOrEqual(metrics.meanAbsDiff!);
    expect(metrics.referenceAccuracy).toBeGreaterThanOrEqual(0.95);
    expect(metrics.referenceAccuracy! - metrics.accuracy!).toBeLessThanOrEqual(0.01);
    expect(metrics.sizeRatio).toBeLessThan(1);
    expect(lineage.datasetHash).toMatch(/^[0-9a-f]{64}$/);
    expect(lineage.parameters).toMatchObject({ quantize: 'uint8', calibrationFiles: 4 });
  });

  it('profiles the monitored features of a tfjs release, as it does an ONNX one', async () => {
    const contract = JSON.parse(await readFile(TONE_CONTRACT, 'utf8'));
    contract.monitoring = {
      features: [
        {
          name: 'tone',
          source: { from: 'output', tensor: 'probabilities', reduce: 'argmax' },
          binEdges: [0.5, 1.5],
        },
        { name: 'level', source: { from: 'input', tensor: 'audio', reduce: 'rms' }, bins: 4 },
      ],
    };
    const result = await publishModel({
      model: TONE_MODEL,
      name: 'tone',
      version: '3.0.0',
      calibration,
      contract,
      publisherKey: await generateSigningKey(),
      dryRun: true,
    });
    const [tone, level] = result.signed.signed.monitoring.features;
    expect(result.profile.map((f) => f.observations)).toEqual([200, 200]);
    // The model is right on at least 95% of these frames: its argmax shares are the labels' shares.
    const labels: number[] = [];
    for (const name of (await readdir(calibration)).sort()) {
      labels.push(...JSON.parse(await readFile(join(calibration, name), 'utf8')).labels);
    }
    const shares = [0, 1, 2].map((k) => labels.filter((l) => l === k).length / labels.length);
    for (const [k, share] of tone!.reference.entries()) {
      expect(Math.abs(share - shares[k]!)).toBeLessThanOrEqual(0.05);
    }
    expect(level!.binEdges.length).toBeGreaterThanOrEqual(1);
    expect(level!.reference.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
  });

  it('refuses with E_GATE, exit 1 and one line on stderr when a gate fails, sending nothing', async () => {
    const before = (await t.viewer.listReleases('tone')).releases.length;
    const run = await publish('2.0.0', ['--max-mad', '0.00001']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^edgeship: E_GATE: validation failed: maxMeanAbsDiff: mean \|Δ\| [0-9.]+ > 0\.00001\n$/,
    );
    const printed = JSON.parse(run.stdout);
    expect(printed).toMatchObject({ ok: false, validation: { passed: false } });
    expect((await t.viewer.listReleases('tone')).releases.length).toBe(before);
  });
});
