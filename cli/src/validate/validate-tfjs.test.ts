// The tfjs gates on the project's own tone classifier (demo-pwa/models/tone) and on a hand-written
// graph model: both models run in tfjs (pure-JS CPU) and go through the ONNX path's gates.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '@edgeship/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  TONE_CONTRACT,
  TONE_MODEL,
  writeToneCalibration,
} from '../../../demo-pwa/models/tone/calibration.ts';
import { tinyWeights } from '../../test-data/tiny-model.ts';
import { type Calibration, readCalibration } from '../publish/calibration.ts';
import { ContractSchema } from '../publish/contract.ts';
import { quantizeTfjs, readTfjsModel, type TfjsModel } from '../publish/tfjs.ts';
import { summarizeValidation, type ValidationBudget } from './gates.ts';
import type { Feeds } from './run-sequence.ts';
import { loadTfjsRunner, type TfjsFiles, validateTfjs } from './validate-tfjs.ts';

/** What `edgeship publish` holds a quantized model with labelled data to, plus agreement at 0.5. */
const BUDGET: ValidationBudget = {
  maxMeanAbsDiff: 0.01,
  maxAccuracyDrop: 0.01,
  minAgreement: { output: 'probabilities', threshold: 0.5, min: 0.95 },
};

/** A copy with every shard's bytes reversed: the same sizes and manifest, the weights scrambled. */
function scrambleShards(files: TfjsFiles): Map<string, Uint8Array> {
  // new Uint8Array(...) copies; a Node Buffer's slice() would be a view, and reverse() would then
  // scramble the caller's model too.
  return new Map(
    [...files].map(([path, bytes]) => [
      path,
      path === 'model.json' ? bytes : new Uint8Array(bytes).reverse(),
    ]),
  );
}

describe('validateTfjs on the tone classifier', () => {
  let tone: TfjsModel;
  let uint8: Map<string, Uint8Array>;
  let calibration: Calibration;

  beforeAll(async () => {
    tone = await readTfjsModel(TONE_MODEL);
    uint8 = quantizeTfjs(tone, 'uint8').files;
    const dir = await mkdtemp(join(tmpdir(), 'edgeship-tone-calibration-'));
    await writeToneCalibration(dir);
    const contract = ContractSchema.parse(JSON.parse(await readFile(TONE_CONTRACT, 'utf8')));
    calibration = await readCalibration(dir, contract);
  });

  const labelsOf = (c: Calibration) => ({ output: 'probabilities', expected: c.labels! });

  it('passes uint8 weights with the measured drift, agreement and accuracy', async () => {
    const report = await validateTfjs({
      reference: tone.files,
      candidate: uint8,
      inputs: calibration.sequences,
      labels: labelsOf(calibration),
      budget: BUDGET,
    });
    expect(report.gates.filter((g) => !g.passed)).toEqual([]);
    expect(report.passed).toBe(true);
    expect(report.gates.map((g) => g.name)).toEqual([
      'reference-loads',
      'candidate-loads',
      'reference-runs',
      'candidate-runs',
      'outputs-match',
      'finite',
      'maxMeanAbsDiff',
      'minAgreement',
      'maxAccuracyDrop',
    ]);
    const c = report.comparison!;
    expect(c.frames).toBe(200);
    // Quantized, so not bit-identical; still far inside the budget.
    expect(c.meanAbsDiff).toBeGreaterThan(0);
    expect(c.meanAbsDiff).toBeLessThan(0.01);
    expect(c.agreement).toBeGreaterThanOrEqual(0.95);
    // The trainer measured 0.95+ held out; fresh examples from another seed agree.
    expect(c.accuracy!.reference).toBeGreaterThanOrEqual(0.95);
    expect(c.accuracy!.reference - c.accuracy!.candidate).toBeLessThanOrEqual(0.01);
    expect(report.sizes.candidateBytes).toBeLessThan(report.sizes.referenceBytes);
    expect(report.latency.candidateMs).toBeGreaterThan(0);
    expect(report.latency.candidateLoadMs).toBeGreaterThan(0);
    expect(summarizeValidation(report)).toMatch(/^validation passed: 9 gates, mean \|Δ\| /);
  });

  it('refuses a scrambled-weights copy, naming each failed gate, and leaves the original intact', async () => {
    const before = await sha256Hex(uint8.get('group1-shard1of1.bin')!);
    const report = await validateTfjs({
      reference: tone.files,
      candidate: scrambleShards(uint8),
      inputs: calibration.sequences,
      labels: labelsOf(calibration),
      budget: BUDGET,
    });
    expect(report.passed).toBe(false);
    const failed = report.gates.filter((g) => !g.passed).map((g) => g.name);
    expect(failed).toEqual(expect.arrayContaining(['maxMeanAbsDiff', 'maxAccuracyDrop']));
    // Still loads and runs: only the comparison catches it.
    expect(failed).not.toContain('candidate-loads');
    expect(summarizeValidation(report)).toMatch(
      /^validation failed: maxMeanAbsDiff: mean \|Δ\| [0-9.]+ > 0\.01; .*maxAccuracyDrop: accuracy [0-9.]+% vs reference [0-9.]+% \(drop [0-9.]+%, limit 1\.0%\)/,
    );
    expect(await sha256Hex(uint8.get('group1-shard1of1.bin')!)).toBe(before);
  });

  it('fails the load gate, with the reason, when a shard is missing', async () => {
    const missing = new Map(uint8);
    missing.delete('group1-shard1of1.bin');
    const report = await validateTfjs({
      reference: tone.files,
      candidate: missing,
      inputs: calibration.sequences,
      labels: labelsOf(calibration),
      budget: BUDGET,
    });
    expect(report.passed).toBe(false);
    expect(summarizeValidation(report)).toBe(
      'validation failed: candidate-loads: candidate model failed to load: model.json names shard group1-shard1of1.bin, which the release does not hold',
    );
  });
});

describe('validateTfjs on a graph model', () => {
  // y = x · W + b as a TensorFlow GraphDef, the way tfjs-converter writes one.
  const W = tinyWeights(64, 32);
  const b = Float32Array.from({ length: 32 }, (_, i) => i / 32 - 0.5);
  const float = (dims: number[]) => ({
    dtype: { type: 'DT_FLOAT' },
    value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: dims.map((d) => ({ size: String(d) })) } } },
  });
  const T = { T: { type: 'DT_FLOAT' } };
  const modelJson = {
    format: 'graph-model',
    modelTopology: {
      node: [
        {
          name: 'x',
          op: 'Placeholder',
          attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: '-1' }, { size: '64' }] } } },
        },
        { name: 'dense/kernel', op: 'Const', attr: float([64, 32]) },
        { name: 'dense/bias', op: 'Const', attr: float([32]) },
        {
          name: 'dense/MatMul',
          op: 'MatMul',
          input: ['x', 'dense/kernel'],
          attr: { ...T, transpose_a: { b: false }, transpose_b: { b: false } },
        },
        { name: 'dense/add', op: 'AddV2', input: ['dense/MatMul', 'dense/bias'], attr: T },
        { name: 'y', op: 'Identity', input: ['dense/add'], attr: T },
      ],
      versions: { producer: 1 },
    },
    weightsManifest: [
      {
        paths: ['group1-shard1of1.bin'],
        weights: [
          { name: 'dense/kernel', shape: [64, 32], dtype: 'float32' },
          { name: 'dense/bias', shape: [32], dtype: 'float32' },
        ],
      },
    ],
  };
  const shard = new Uint8Array(W.byteLength + b.byteLength);
  shard.set(new Uint8Array(W.buffer), 0);
  shard.set(new Uint8Array(b.buffer), W.byteLength);
  const graph: TfjsModel = {
    modelJson,
    files: new Map([
      ['model.json', new TextEncoder().encode(JSON.stringify(modelJson))],
      ['group1-shard1of1.bin', shard],
    ]),
  };
  let seed = 7;
  const random = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed / 2 ** 32) * 2 - 1;
  };
  const frames: Feeds[] = Array.from({ length: 16 }, () => ({
    x: { type: 'float32', data: Float32Array.from({ length: 64 }, random), dims: [1, 64] },
  }));

  it('loads through tf.loadGraphModel from memory and computes x · W + b', async () => {
    const runner = await loadTfjsRunner(graph.files);
    expect(runner.outputNames).toEqual(['y']);
    const { outputs } = await runner.runSequence(frames);
    for (const [f, frame] of frames.entries()) {
      const x = frame.x!.data as Float32Array;
      const y = outputs[f]!.y!;
      expect(y.dims).toEqual([1, 32]);
      for (let j = 0; j < 32; j++) {
        let expected = b[j]!;
        for (let i = 0; i < 64; i++) expected += x[i]! * W[i * 32 + j]!;
        expect((y.data as Float32Array)[j]).toBeCloseTo(expected, 4);
      }
    }
    await runner.release();
  });

  it('runs a graph with a dynamic op (tf.where) through executeAsync', async () => {
    const dynamic = structuredClone(modelJson);
    dynamic.modelTopology.node.push(
      { name: 'positive/mask', op: 'Greater', input: ['y', 'zero'], attr: T },
      { name: 'zero', op: 'Const', attr: float([]) },
      { name: 'positive', op: 'Where', input: ['positive/mask'], attr: { T: { type: 'DT_BOOL' } } },
    );
    dynamic.weightsManifest[0]!.weights.push({ name: 'zero', shape: [], dtype: 'float32' });
    const withZero = new Uint8Array(shard.length + 4);
    withZero.set(shard);
    const runner = await loadTfjsRunner(
      new Map([
        ['model.json', new TextEncoder().encode(JSON.stringify(dynamic))],
        ['group1-shard1of1.bin', withZero],
      ]),
    );
    expect(runner.outputNames).toEqual(['positive']);
    const { outputs } = await runner.runSequence(frames.slice(0, 2));
    const plain = await loadTfjsRunner(graph.files);
    const { outputs: ys } = await plain.runSequence(frames.slice(0, 2));
    for (const [f, out] of outputs.entries()) {
      const y = ys[f]!.y!.data as Float32Array;
      const expected = [...y.keys()].filter((j) => y[j]! > 0).flatMap((j) => [0, j]);
      expect(Array.from(out.positive!.data as Int32Array)).toEqual(expected);
    }
    await runner.release();
    await plain.release();
  });

  it('passes uint16 weights and refuses a scrambled copy through the same gates', async () => {
    // uint16: byte-reversed values are still valid numbers, so only the drift gate can catch them.
    const uint16 = quantizeTfjs(graph, 'uint16').files;
    const budget = { maxMeanAbsDiff: 0.01 };
    const passed = await validateTfjs({
      reference: graph.files,
      candidate: uint16,
      inputs: [frames],
      budget,
    });
    expect(passed.passed).toBe(true);
    expect(passed.comparison!.meanAbsDiff).toBeGreaterThan(0);

    const scrambled = await validateTfjs({
      reference: graph.files,
      candidate: scrambleShards(uint16),
      inputs: [frames],
      budget,
    });
    expect(scrambled.passed).toBe(false);
    expect(summarizeValidation(scrambled)).toMatch(
      /^validation failed: maxMeanAbsDiff: mean \|Δ\| [0-9.]+ > 0\.01$/,
    );
  });
});
