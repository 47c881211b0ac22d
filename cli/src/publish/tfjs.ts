import { dirname, join } from 'node:path';
import { concatBytes, fromFloat16Array, toFloat16Array, toFloat16Bytes } from '@edgeship/protocol';
import { readBytes, readJsonFile } from '../commands/files.ts';
import { CliError } from '../commands/output.ts';

/** A TensorFlow.js model as the converter writes it: model.json and its weight shards. */
export interface TfjsModel {
  modelJson: TfjsModelJson;
  /** model.json first, then each shard, by the path the manifest names. */
  files: Map<string, Uint8Array>;
}

interface WeightEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number };
}
interface WeightGroup {
  paths: string[];
  weights: WeightEntry[];
}
interface TfjsModelJson {
  weightsManifest: WeightGroup[];
  [key: string]: unknown;
}

export interface TfjsQuantizeReport {
  mode: 'uint8' | 'uint16' | 'float16' | 'none';
  weightsQuantized: number;
  bytesBefore: number;
  bytesAfter: number;
  /** Mean |dequantized - float| over every quantized weight value (a weight-level check only). */
  weightMeanAbsDiff: number;
}

const PLAIN_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export async function readTfjsModel(path: string): Promise<TfjsModel> {
  const modelJson = (await readJsonFile(path)) as TfjsModelJson;
  if (!Array.isArray(modelJson?.weightsManifest)) {
    throw new CliError(`${path} is not a TensorFlow.js model.json (no weightsManifest)`);
  }
  const files = new Map<string, Uint8Array>([['model.json', await readBytes(path)]]);
  for (const group of modelJson.weightsManifest) {
    for (const shard of group.paths) {
      // Releases hold plain file names side by side; a shard elsewhere would not survive that.
      if (!PLAIN_FILE.test(shard))
        throw new CliError(`${path}: shard path ${shard} is not a plain file name`);
      files.set(shard, await readBytes(join(dirname(path), shard)));
    }
  }
  return { modelJson, files };
}

const BYTES_PER: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/**
 * TensorFlow.js weight quantization: float32 weights stored as uint8/uint16 (affine:
 * value = q * scale + min, as tfjs-converter's dequantization reads the manifest) or float16, each
 * group rewritten into one shard; every other weight is copied as it is.
 */
export function quantizeTfjs(
  model: TfjsModel,
  mode: 'uint8' | 'uint16' | 'float16' | 'none' | 'int8',
): { files: Map<string, Uint8Array>; report: TfjsQuantizeReport } {
  if (mode === 'int8') throw new CliError('tfjs weights quantize to uint8, uint16 or float16, not int8');
  const bytesBefore = [...model.files.values()].reduce((n, b) => n + b.length, 0);
  if (mode === 'none') {
    return {
      files: model.files,
      report: { mode, weightsQuantized: 0, bytesBefore, bytesAfter: bytesBefore, weightMeanAbsDiff: 0 },
    };
  }
  const manifest: WeightGroup[] = [];
  const shards = new Map<string, Uint8Array>();
  let weightsQuantized = 0;
  let diffSum = 0;
  let diffCount = 0;
  model.modelJson.weightsManifest.forEach((group, g) => {
    const data = concatBytes(group.paths.map((p) => model.files.get(p)!));
    let offset = 0;
    const parts: Uint8Array[] = [];
    const weights: WeightEntry[] = [];
    for (const w of group.weights) {
      const count = w.shape.reduce((n, d) => n * d, 1);
      const size = count * (BYTES_PER[w.quantization?.dtype ?? w.dtype] ?? Number.NaN);
      if (!Number.isFinite(size) || offset + size > data.length) {
        throw new CliError(`weight ${w.name}: dtype ${w.dtype} or size does not fit its shards`);
      }
      const raw = data.subarray(offset, offset + size);
      offset += size;
      if (w.dtype !== 'float32' || w.quantization) {
        parts.push(raw);
        weights.push(w);
        continue;
      }
      const values = new Float32Array(count);
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      for (let i = 0; i < count; i++) values[i] = view.getFloat32(i * 4, true);
      const q = mode === 'float16' ? float16(values) : affine(values, mode);
      for (let i = 0; i < count; i++) diffSum += Math.abs(q.dequantized[i]! - values[i]!);
      diffCount += count;
      parts.push(q.bytes);
      weights.push({ name: w.name, shape: w.shape, dtype: 'float32', quantization: q.quantization });
      weightsQuantized++;
    }
    const path = `group${g + 1}-shard1of1.bin`;
    shards.set(path, concatBytes(parts));
    manifest.push({ paths: [path], weights });
  });
  const json = new TextEncoder().encode(JSON.stringify({ ...model.modelJson, weightsManifest: manifest }));
  const files = new Map<string, Uint8Array>([['model.json', json], ...shards]);
  const bytesAfter = [...files.values()].reduce((n, b) => n + b.length, 0);
  return {
    files,
    report: {
      mode,
      weightsQuantized,
      bytesBefore,
      bytesAfter,
      weightMeanAbsDiff: diffCount ? diffSum / diffCount : 0,
    },
  };
}

function float16(values: Float32Array) {
  const dequantized = fromFloat16Array(toFloat16Array(values));
  return { bytes: toFloat16Bytes(values), quantization: { dtype: 'float16' }, dequantized };
}

function affine(values: Float32Array, mode: 'uint8' | 'uint16') {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const levels = mode === 'uint8' ? 255 : 65535;
  const scale = max > min ? (max - min) / levels : 1;
  const q = mode === 'uint8' ? new Uint8Array(values.length) : new Uint16Array(values.length);
  const dequantized = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    q[i] = Math.min(levels, Math.max(0, Math.round((values[i]! - min) / scale)));
    dequantized[i] = q[i]! * scale + min;
  }
  // Little-endian, as tfjs reads shards (the host order, which is little-endian on every target).
  const bytes = new Uint8Array(q.buffer, q.byteOffset, q.byteLength);
  return { bytes, quantization: { dtype: mode, scale, min }, dequantized };
}
