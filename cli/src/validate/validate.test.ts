import { beforeAll, describe, expect, it } from 'vitest';
import { readSileroV5, SILERO_CARRY, sileroTestClips } from '../../test-data/silero.ts';
import { allGraphs, DataType, decodeModel, encodeModel, type Tensor } from '../quantize/onnx-model.ts';
import { quantizeOnnx } from '../quantize/quantize-onnx.ts';
import { compareOutputs } from './compare.ts';
import { summarizeValidation } from './gates.ts';
import { loadSession, numbersOf, runSequence } from './run-sequence.ts';
import { validateOnnx } from './validate-onnx.ts';

const reference = readSileroV5();
const inputs = sileroTestClips().map((c) => c.frames);
let int8: Uint8Array;

beforeAll(async () => {
  int8 = (await quantizeOnnx(reference, { mode: 'int8' })).bytes;
});

/** A deliberately broken quantization: every DequantizeLinear scale multiplied by `factor`. */
function damageScales(model: Uint8Array, factor: number): Uint8Array {
  // A copy: decoded tensors view the bytes they were decoded from, and the scaling below writes
  // through those views; on `model` itself it would damage the caller's model too. (Not
  // `model.slice()`: the encoder hands back a Node Buffer, whose slice is a view.)
  const proto = decodeModel(new Uint8Array(model));
  const scaleNames = new Set<string>();
  const graphs = allGraphs(proto.graph!);
  for (const g of graphs)
    for (const n of g.node ?? []) if (n.opType === 'DequantizeLinear') scaleNames.add(n.input![1]!);
  const scale = (t: Tensor) => {
    const view = new DataView(t.rawData!.buffer, t.rawData!.byteOffset, t.rawData!.byteLength);
    for (let i = 0; i < t.rawData!.length; i += 4)
      view.setFloat32(i, view.getFloat32(i, true) * factor, true);
  };
  for (const g of graphs) {
    for (const n of g.node ?? []) {
      if (n.opType !== 'Constant' || !scaleNames.has(n.output![0]!)) continue;
      const t = n.attribute!.find((a) => a.name === 'value')!.t!;
      expect(t.dataType).toBe(DataType.FLOAT);
      scale(t);
    }
  }
  return encodeModel(proto);
}

describe('validateOnnx on Silero VAD v5', () => {
  /** The Silero reference and its clips, against `candidate` (int8 unless named). */
  const validateSilero = (opts: Partial<Parameters<typeof validateOnnx>[0]>) =>
    validateOnnx({ reference, candidate: int8, inputs, carry: SILERO_CARRY, budget: {}, ...opts });

  it('passes int8 within the budget and reports sizes, drift and timings', async () => {
    const report = await validateSilero({
      outputs: ['output'],
      budget: {
        maxMeanAbsDiff: 0.01,
        maxSizeBytes: reference.length * 0.35,
        minAgreement: { output: 'output', threshold: 0.5, min: 0.9 },
      },
    });
    expect(report.passed).toBe(true);
    expect(report.gates.map((g) => g.name)).toEqual(
      expect.arrayContaining(['maxSizeBytes', 'candidate-loads', 'finite', 'maxMeanAbsDiff', 'minAgreement']),
    );
    expect(report.comparison!.frames).toBe(inputs.reduce((n, s) => n + s.length, 0));
    expect(report.comparison!.meanAbsDiff).toBeGreaterThan(0);
    expect(report.comparison!.meanAbsDiff).toBeLessThan(0.01);
    expect(report.sizes.ratio).toBeLessThan(0.35);
    expect(report.latency.candidateMs).toBeGreaterThan(0);
    expect(summarizeValidation(report)).toMatch(/^validation passed: /);
  });

  it('refuses int8 against a budget it does not meet, naming the gate', async () => {
    const report = await validateSilero({
      outputs: ['output'],
      budget: { maxMeanAbsDiff: 1e-5 },
    });
    expect(report.passed).toBe(false);
    const failed = report.gates.filter((g) => !g.passed);
    expect(failed.map((g) => g.name)).toEqual(['maxMeanAbsDiff']);
    expect(summarizeValidation(report)).toMatch(
      /^validation failed: maxMeanAbsDiff: mean \|Δ\| .+ > 0\.00001$/,
    );
  });

  it('refuses a damaged quantization whose outputs drift beyond the usual budget', async () => {
    const damaged = damageScales(int8, 1.6);
    const report = await validateSilero({
      candidate: damaged,
      outputs: ['output'],
      budget: { maxMeanAbsDiff: 0.01 },
    });
    expect(report.passed).toBe(false);
    expect(report.comparison!.meanAbsDiff).toBeGreaterThan(0.01);
    expect(report.gates.find((g) => g.name === 'maxMeanAbsDiff')!.passed).toBe(false);
  });

  it('gates on the task metric when labels are given: int8 keeps its accuracy, a damaged model does not', async () => {
    // Labels: the float model's own speech/no-speech decisions, so the reference scores 100%.
    const { session } = await loadSession(reference);
    const expected: number[] = [];
    for (const frames of inputs) {
      for (const out of (await runSequence(session, frames, SILERO_CARRY)).outputs) {
        expected.push(numbersOf(out.output!)[0]! >= 0.5 ? 1 : 0);
      }
    }
    expect(new Set(expected)).toEqual(new Set([0, 1])); // the clips hold speech and silence
    const labels = { output: 'output', expected, threshold: 0.5 };
    const budget = { maxAccuracyDrop: 0.01 };

    const good = await validateSilero({
      labels,
      budget,
    });
    expect(good.comparison!.accuracy!.reference).toBe(1);
    expect(good.comparison!.accuracy!.candidate).toBeGreaterThanOrEqual(0.99);
    expect(good.gates.find((g) => g.name === 'maxAccuracyDrop')!.passed).toBe(true);

    const bad = await validateSilero({
      candidate: damageScales(int8, 1.6),
      labels,
      budget,
    });
    expect(bad.comparison!.accuracy!.candidate).toBeLessThan(0.99);
    expect(bad.gates.find((g) => g.name === 'maxAccuracyDrop')!.passed).toBe(false);
    expect(bad.passed).toBe(false);
  });

  it('reports a candidate that does not load as a failed gate, not a crash', async () => {
    const report = await validateSilero({
      candidate: new TextEncoder().encode('not a model'),
      budget: { maxMeanAbsDiff: 0.01 },
    });
    expect(report.passed).toBe(false);
    expect(report.gates.find((g) => g.name === 'candidate-loads')).toMatchObject({ passed: false });
    expect(summarizeValidation(report)).toMatch(/candidate-loads: candidate model failed to load: /);
  });

  it('refuses a size budget the candidate exceeds and a bad budget argument', async () => {
    const report = await validateSilero({
      inputs: [inputs[0]!.slice(0, 4)],
      budget: { maxSizeBytes: 1000 },
    });
    expect(report.gates.find((g) => g.name === 'maxSizeBytes')).toMatchObject({ passed: false, limit: 1000 });
    await expect(
      validateOnnx({ reference, candidate: int8, inputs, budget: { maxMeanAbsDiff: -1 } }),
    ).rejects.toMatchObject({ code: 'E_INPUT' });
    await expect(
      validateOnnx({ reference, candidate: int8, inputs, carry: { nope: 'state' }, budget: {} }),
    ).rejects.toMatchObject({ code: 'E_INPUT' });
  });
});

describe('compareOutputs', () => {
  it('names a shape mismatch and counts non-finite values', async () => {
    const { Tensor } = await import('onnxruntime-node');
    const a = [{ y: new Tensor('float32', Float32Array.of(1, 2), [1, 2]) }];
    const b = [{ y: new Tensor('float32', Float32Array.of(1, 2, 3), [1, 3]) }];
    expect(compareOutputs(a, b, ['y']).mismatch).toMatch(/shape \[1,3\], the reference \[1,2\]/);
    const c = [{ y: new Tensor('float32', Float32Array.of(1, Number.NaN), [1, 2]) }];
    expect(compareOutputs(a, c, ['y']).nonFinite).toBe(1);
  });
});
