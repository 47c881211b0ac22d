import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { type DType, sha256Hex, type TensorSpec } from '@edgeship/protocol';
import type * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { readBytes } from '../commands/files.ts';
import { CliError } from '../commands/output.ts';
import type { Feeds, TensorLike } from '../validate/run-sequence.ts';
import type { Contract } from './contract.ts';
import { readWav } from './wav.ts';

export interface Calibration {
  /** One sequence per file, each frame a complete set of feeds. */
  sequences: Feeds[][];
  files: string[];
  frames: number;
  /** SHA-256 over each file's name and hash, in name order: the dataset in the lineage. */
  datasetHash: string;
  /**
   * Expected answers, one per frame in sequence order (a class index, or 0/1 against the decision
   * threshold), when every calibration file carries them: the accuracy gate's task metric.
   */
  labels: number[] | null;
}

/** A .json calibration file: one sequence of frames, each tensor by input name, maybe labelled. */
const JsonCalibrationSchema = z
  .strictObject({
    frames: z
      .array(
        z.record(z.string(), z.strictObject({ dims: z.array(z.int().min(0)), data: z.array(z.number()) })),
      )
      .min(1),
    /** One expected answer per frame. */
    labels: z.array(z.int().min(0)).optional(),
  })
  .refine((v) => v.labels === undefined || v.labels.length === v.frames.length, {
    message: 'labels must have one entry per frame',
    path: ['labels'],
  });

/** Reads every .wav and .json file of a directory into input sequences the contract describes. */
export async function readCalibration(dir: string, contract: Contract): Promise<Calibration> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => ['.wav', '.json'].includes(extname(n).toLowerCase())).sort();
  } catch (error) {
    throw new CliError(`cannot read ${dir}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
  if (names.length === 0) throw new CliError(`${dir} holds no .wav or .json calibration files`);
  const sequences: Feeds[][] = [];
  const hashes: string[] = [];
  const labels: Array<number[] | null> = [];
  for (const name of names) {
    const bytes = await readBytes(join(dir, name));
    hashes.push(`${name}\0${await sha256Hex(bytes)}\n`);
    const { frames, labels: fileLabels } = name.toLowerCase().endsWith('.wav')
      ? { frames: audioFrames(name, bytes, contract), labels: null }
      : jsonFrames(name, bytes, contract);
    if (frames.length === 0) throw new CliError(`${name} is shorter than one input frame`);
    sequences.push(frames);
    labels.push(fileLabels);
  }
  const labelled = labels.filter((l) => l !== null).length;
  if (labelled > 0 && labelled < labels.length) {
    throw new CliError(
      `${labelled} of ${labels.length} calibration files carry labels: label all of them or none`,
    );
  }
  return {
    sequences,
    files: names,
    frames: sequences.reduce((n, s) => n + s.length, 0),
    labels: labelled > 0 ? labels.flatMap((l) => l!) : null,
    datasetHash: await sha256Hex(new TextEncoder().encode(hashes.join(''))),
  };
}

function audioFrames(name: string, bytes: Uint8Array, contract: Contract): Feeds[] {
  const audio = contract.audio;
  if (!audio) throw new CliError(`${name}: .wav calibration needs "audio" in the contract`);
  const spec = contract.inputs.find((i) => i.name === audio.input);
  if (spec?.dtype !== 'float32') {
    throw new CliError(`contract audio.input "${audio.input}" must name a float32 input`);
  }
  let wav: ReturnType<typeof readWav>;
  try {
    wav = readWav(bytes);
  } catch (error) {
    throw new CliError(`${name}: ${(error as Error).message}`);
  }
  if (wav.sampleRate !== audio.sampleRate) {
    throw new CliError(`${name}: ${wav.sampleRate} Hz, the contract needs ${audio.sampleRate} Hz`);
  }
  const dims = fixedDims(spec);
  const size = dims.reduce((n, d) => n * d, 1);
  const frames: Feeds[] = [];
  for (let at = 0; at + size <= wav.samples.length; at += size) {
    frames.push({
      ...constantInputs(contract, audio.input),
      [audio.input]: { type: 'float32', data: wav.samples.slice(at, at + size), dims },
    });
  }
  return frames;
}

function jsonFrames(
  name: string,
  bytes: Uint8Array,
  contract: Contract,
): { frames: Feeds[]; labels: number[] | null } {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new CliError(`${name} is not JSON`);
  }
  const parsed = JsonCalibrationSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CliError(`${name}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const frames = parsed.data.frames.map((frame, f) => {
    const feeds: Feeds = constantInputs(contract);
    for (const [input, t] of Object.entries(frame)) {
      const spec = contract.inputs.find((i) => i.name === input);
      if (!spec) throw new CliError(`${name}: frame ${f} names unknown input "${input}"`);
      if (t.data.length !== t.dims.reduce((n, d) => n * d, 1)) {
        throw new CliError(
          `${name}: frame ${f} input "${input}" has ${t.data.length} values for [${t.dims}]`,
        );
      }
      feeds[input] = tensorOf(spec.dtype, t.data, t.dims);
    }
    for (const spec of contract.inputs) {
      if (!feeds[spec.name]) throw new CliError(`${name}: frame ${f} lacks input "${spec.name}"`);
    }
    return feeds;
  });
  return { frames, labels: parsed.data.labels ?? null };
}

/**
 * Inputs a calibration file does not give: those with a one-value range (e.g. a sample rate) are
 * filled with it, the rest (e.g. recurrent state, which carry replaces after the first frame)
 * with zeros.
 */
function constantInputs(contract: Contract, except?: string): Feeds {
  const feeds: Feeds = {};
  for (const spec of contract.inputs) {
    if (spec.name === except) continue;
    const dims = fixedDims(spec);
    const fill = spec.range && spec.range.min === spec.range.max ? spec.range.min : 0;
    feeds[spec.name] = tensorOf(spec.dtype, new Array(dims.reduce((n, d) => n * d, 1)).fill(fill), dims);
  }
  return feeds;
}

function fixedDims(spec: TensorSpec): number[] {
  return spec.shape.map((d) => {
    if (typeof d === 'number') return d;
    // A symbolic dimension in a calibration frame: one (a batch of one, a single step).
    return 1;
  });
}

function tensorOf(dtype: DType, values: number[], dims: number[]): TensorLike {
  const type = dtype as ort.Tensor.Type;
  switch (dtype) {
    case 'float32':
      return { type, data: Float32Array.from(values), dims };
    case 'int64':
      return { type, data: BigInt64Array.from(values, (v) => BigInt(Math.round(v))), dims };
    case 'int32':
      return { type, data: Int32Array.from(values), dims };
    case 'int8':
      return { type, data: Int8Array.from(values), dims };
    case 'uint8':
      return { type, data: Uint8Array.from(values), dims };
    case 'bool':
      return { type, data: Uint8Array.from(values, (v) => (v ? 1 : 0)), dims };
    case 'float16':
      throw new CliError('float16 model inputs are not supported for calibration');
  }
}
