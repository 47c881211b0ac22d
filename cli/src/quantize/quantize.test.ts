import { FLOAT16_MAX, float16ToNumber, fromFloat16Array, toFloat16Array } from '@edgeship/protocol';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSileroV5, SILERO_CARRY, sileroTestClips } from '../../test-data/silero.ts';
import { tinyMatMulModel, tinyWeights } from '../../test-data/tiny-model.ts';
import { compareOutputs } from '../validate/compare.ts';
import { loadSession, runSequence } from '../validate/run-sequence.ts';
import { dequantize, quantizePerChannel, quantizePerTensor } from './int8.ts';
import { allGraphs, DataType, decodeModel, onnx } from './onnx-model.ts';
import { type QuantizeReport, quantizeOnnx } from './quantize-onnx.ts';

/**
 * Every finite half as float32, then every tie between neighbouring positive halves: the weights
 * the quantizer must store as exactly those halves, and the ties as the even neighbour.
 */
function float16Weights(): { values: Float32Array; bits: Uint16Array } {
  const finite = Array.from({ length: 0x10000 }, (_, b) => b).filter((b) => (b & 0x7c00) !== 0x7c00);
  const ties = Array.from({ length: 0x7bff }, (_, low) => low);
  const values = Float32Array.from([
    ...finite.map(float16ToNumber),
    ...ties.map((low) => (float16ToNumber(low) + float16ToNumber(low + 1)) / 2),
  ]);
  const bits = Uint16Array.from([...finite, ...ties.map((low) => (low & 1 ? low + 1 : low))]);
  return { values, bits };
}

/** y = x * W, W a float32 initializer. */
function mulModel(w: Float32Array): Uint8Array {
  const FLOAT = DataType.FLOAT;
  const info = (name: string, dims: number[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
    });
  const graph = onnx.GraphProto.create({
    name: 'mul',
    node: [onnx.NodeProto.create({ opType: 'Mul', input: ['x', 'W'], output: ['y'] })],
    initializer: [
      onnx.TensorProto.create({ name: 'W', dataType: FLOAT, dims: [w.length], floatData: [...w] }),
    ],
    input: [info('x', [1])],
    output: [info('y', [w.length])],
  });
  const model = onnx.ModelProto.create({ irVersion: 7, opsetImport: [{ domain: '', version: 13 }], graph });
  return onnx.ModelProto.encode(model).finish();
}

describe('float16 weights', () => {
  it('store every finite half as its own bits and ties as the even one, the bits the runtime computes', async () => {
    const { values, bits } = float16Weights();
    const { bytes, report } = await quantizeOnnx(mulModel(values), { mode: 'float16' });
    expect(report.tensorsQuantized).toBe(1);
    const stored = decodeModel(bytes).graph!.initializer!.find((t) => t.dataType === DataType.FLOAT16)!;
    const raw = stored.rawData!;
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const storedBits = Uint16Array.from({ length: raw.byteLength / 2 }, (_, i) =>
      view.getUint16(i * 2, true),
    );
    expect(storedBits).toEqual(bits);
    // The runtime's conversion (sampled inputs, validation, the tfjs engine) is the same function.
    expect(storedBits).toEqual(toFloat16Array(values));

    // onnxruntime's own float16 -> float32 Cast, a decoder by another hand, reads back those halves.
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1), [1]) });
    await session.release();
    const decoded = out.y!.data as Float32Array;
    const mismatched = [...bits].filter((b, i) => !Object.is(decoded[i], float16ToNumber(b)));
    expect(mismatched).toEqual([]);
  });

  it('keeps every value of a weight tensor within half a unit in the last place', () => {
    const w = tinyWeights(32, 32);
    const back = fromFloat16Array(toFloat16Array(w));
    for (let i = 0; i < w.length; i++) {
      expect(Math.abs(back[i]! - w[i]!)).toBeLessThanOrEqual(Math.abs(w[i]!) * 2 ** -11 + 2 ** -25);
    }
  });

  it('leaves a tensor with values beyond the largest half in float32', async () => {
    const w = tinyWeights(32, 32);
    w[5] = FLOAT16_MAX + 16; // would round to Infinity
    const { report } = await quantizeOnnx(mulModel(w), { mode: 'float16' });
    expect(report).toMatchObject({ tensorsQuantized: 0, tensorsSkipped: 1 });
  });
});

describe('int8 weights', () => {
  it('per-channel: each weight within half a step of its channel, and better than per-tensor', () => {
    const dims = [64, 32];
    const w = tinyWeights(64, 32);
    const q = quantizePerChannel(w, dims, 1);
    const back = dequantize(q, dims);
    for (let i = 0; i < w.length; i++) {
      expect(Math.abs(back[i]! - w[i]!)).toBeLessThanOrEqual(q.scales[i % 32]! / 2 + 1e-7);
    }
    const err = (x: Float32Array) => x.reduce((s, v, i) => s + (v - w[i]!) ** 2, 0);
    expect(err(back)).toBeLessThan(err(dequantize(quantizePerTensor(w), dims)));
  });

  it('per-tensor: zero stays exactly zero', () => {
    const w = Float32Array.of(0, 0.3, -0.7, 1.9, 0);
    const back = dequantize(quantizePerTensor(w), [5]);
    expect(back[0]).toBe(0);
    expect(back[4]).toBe(0);
  });
});

async function runTiny(model: Uint8Array, x: Float32Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  const out = await session.run({ x: new ort.Tensor('float32', x, [1, x.length]) });
  await session.release();
  return out.y!.data as Float32Array;
}

function opTypes(model: Uint8Array): string[] {
  return allGraphs(decodeModel(model).graph!).flatMap((g) => (g.node ?? []).map((n) => n.opType ?? ''));
}

describe('quantizeOnnx on small models', () => {
  const x = tinyWeights(1, 64).map((v) => v / 10);

  it.each([
    [
      'opset 13, initializer: per-channel DequantizeLinear',
      { opset: 13, inIf: false },
      'DequantizeLinear',
      true,
    ],
    ['opset 11: per-tensor DequantizeLinear', { opset: 11, inIf: false }, 'DequantizeLinear', false],
    ['opset 9: Cast + Sub + Mul', { opset: 9, inIf: false }, 'Sub', true],
    ['opset 16, Constant inside If branches', { opset: 16, inIf: true }, 'DequantizeLinear', true],
  ])('%s runs in onnxruntime and stays close to float32', async (_, model, op, perChannel) => {
    const float = tinyMatMulModel(model);
    const { bytes, report } = await quantizeOnnx(float, { mode: 'int8', minElements: 16 });
    expect(report.perChannel).toBe(perChannel);
    expect(report.tensorsQuantized).toBe(model.inIf ? 2 : 1);
    expect(opTypes(bytes)).toContain(op);
    expect(report.bytesAfter).toBeLessThan(report.bytesBefore);
    const ref = await runTiny(float, x);
    const got = await runTiny(bytes, x);
    const scale = Math.max(...ref.map(Math.abs));
    for (let i = 0; i < ref.length; i++) expect(Math.abs(got[i]! - ref[i]!)).toBeLessThan(scale * 0.02);
  });

  it('float16 stores half-size weights behind a Cast', async () => {
    const float = tinyMatMulModel({ opset: 13 });
    const { bytes, report } = await quantizeOnnx(float, { mode: 'float16', minElements: 16 });
    expect(opTypes(bytes)).toContain('Cast');
    expect(report.ratio).toBeLessThan(0.6);
    const ref = await runTiny(float, x);
    const got = await runTiny(bytes, x);
    for (let i = 0; i < ref.length; i++) expect(got[i]!).toBeCloseTo(ref[i]!, 2);
  });

  it('refuses bytes that are not a model and an unknown mode, with stable codes', async () => {
    await expect(quantizeOnnx(Uint8Array.of(1, 2, 3, 255), { mode: 'int8' })).rejects.toMatchObject({
      code: 'E_MALFORMED',
    });
    await expect(
      quantizeOnnx(tinyMatMulModel({ opset: 13 }), { mode: 'int4' as 'int8' }),
    ).rejects.toMatchObject({ code: 'E_INPUT' });
  });
});

describe('Silero VAD v5, int8', () => {
  const float32 = readSileroV5();
  let int8: Uint8Array;
  let report: QuantizeReport;

  beforeAll(async () => {
    ({ bytes: int8, report } = await quantizeOnnx(float32, { mode: 'int8' }));
  });

  it('quantizes the weights held in Constant nodes inside If branches', () => {
    expect(report.tensorsQuantized).toBeGreaterThan(10);
    expect(opTypes(int8).filter((t) => t === 'DequantizeLinear').length).toBe(report.tensorsQuantized);
    // Every rewritten weight lives in a subgraph: Silero's main graph holds no weights.
    expect(decodeModel(int8).graph!.node!.some((n) => n.opType === 'DequantizeLinear')).toBe(false);
  });

  it('is under a third of the float32 size and loads in onnxruntime-node', async () => {
    expect(report.ratio).toBeLessThan(1 / 3);
    const { session } = await loadSession(int8);
    expect(session.outputNames).toEqual(expect.arrayContaining(['output', 'stateN']));
    await session.release();
  });

  it('keeps the speech probability within 0.01 of float32 on the test clips', async () => {
    const ref = await loadSession(float32);
    const cand = await loadSession(int8);
    let sum = 0;
    let frames = 0;
    for (const clip of sileroTestClips()) {
      const a = await runSequence(ref.session, clip.frames, SILERO_CARRY);
      const b = await runSequence(cand.session, clip.frames, SILERO_CARRY);
      const c = compareOutputs(a.outputs, b.outputs, ['output']);
      expect(c.mismatch).toBeNull();
      sum += c.meanAbsDiff * c.frames;
      frames += c.frames;
    }
    await ref.session.release();
    await cand.session.release();
    expect(frames).toBeGreaterThan(100);
    expect(sum / frames).toBeLessThan(0.01);
  });
});
