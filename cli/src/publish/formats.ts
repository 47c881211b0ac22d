import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Release } from '@edgeship/protocol';
import type { TensorContract } from '@edgeship/runtime/contract';
import { readBytes } from '../commands/files.ts';
import { CliError } from '../commands/output.ts';
import { type QuantizeReport, quantizeOnnx } from '../quantize/quantize-onnx.ts';
import type { ModelUnderTest, ValidationInputs, ValidationReport } from '../validate/gates.ts';
import { onnxUnderTest, tfjsUnderTest } from '../validate/release-runner.ts';
import { validateOnnx } from '../validate/validate-onnx.ts';
import { validateTfjs } from '../validate/validate-tfjs.ts';
import { externalDataLocations } from './external-data.ts';
import { inMemory, type ReleaseFile } from './release-files.ts';
import { quantizeTfjs, readTfjsModel, type TfjsModel, type TfjsQuantizeReport } from './tfjs.ts';

/** int8 is ONNX only; uint8 and uint16 are TensorFlow.js weight quantization only. */
export type Quantize = 'int8' | 'uint8' | 'uint16' | 'float16' | 'none';

/** The model as read, before anything is changed. */
export interface ModelSource {
  /** The release files as they are: onnx.graph first, tfjs model.json first. */
  files: ReleaseFile[];
  /** The float ONNX graph in memory: what the gates compare against (ONNX only). */
  onnx: Uint8Array | null;
  tfjs: TfjsModel | null;
}

/** What is signed and shipped: the files after quantization, and what quantizing reported. */
export interface Candidate {
  files: ReleaseFile[];
  quantization: Release['quantization'];
  onnxReport: QuantizeReport | null;
  tfjsReport: TfjsQuantizeReport | null;
}

/** How one kind of model is read, quantized and run through the gates. */
export interface ModelFormat {
  release: Release['format'];
  read(path: string): Promise<ModelSource>;
  /** Refuses options this format cannot honour, before anything slow runs. */
  check(path: string, source: ModelSource, opts: { quantize: Quantize; calibrated: boolean }): void;
  quantize(source: ModelSource, mode: Quantize, onStep: (detail: string) => void): Promise<Candidate>;
  run(inputs: ValidationInputs, source: ModelSource, candidate: Candidate): Promise<ValidationReport>;
  /** The float model the drift reference is profiled on, through the contract; null: not in memory. */
  reference(source: ModelSource, contract: TensorContract): ModelUnderTest | null;
}

const unquantized = (source: ModelSource): Candidate => ({
  files: source.files,
  quantization: { method: 'none' },
  onnxReport: null,
  tfjsReport: null,
});

const bytesOf = (file: ReleaseFile | undefined): Uint8Array => {
  if (!file || !('bytes' in file)) throw new Error('the model graph is not in memory');
  return file.bytes;
};

/** The part of a source its format's read() always sets; absent only through a programming error. */
function required<T>(value: T | null, what: string): T {
  if (value === null) throw new Error(`the source has no ${what}`);
  return value;
}

/** An ONNX model with its weights inside the protobuf: read, quantized and run in memory. */
const onnx: ModelFormat = {
  release: 'onnx',
  async read(path) {
    const graph = await readBytes(path);
    return { files: [inMemory('model.onnx', graph)], onnx: graph, tfjs: null };
  },
  check() {},
  async quantize(source, mode, onStep) {
    if (mode === 'uint8' || mode === 'uint16') {
      throw new CliError(`--quantize ${mode} is for tfjs models; ONNX takes int8 or float16`);
    }
    if (mode === 'none') return unquantized(source);
    onStep(`${mode} weights`);
    const { bytes, report } = await quantizeOnnx(required(source.onnx, 'ONNX graph'), { mode });
    return {
      files: [inMemory('model.onnx', bytes)],
      quantization: { method: mode, ...(mode === 'int8' ? { perChannel: report.perChannel } : {}) },
      onnxReport: report,
      tfjsReport: null,
    };
  },
  run: (inputs, source, candidate) =>
    validateOnnx({
      ...inputs,
      reference: required(source.onnx, 'ONNX graph'),
      candidate: bytesOf(candidate.files[0]),
      candidateQuantization: candidate.quantization,
    }),
  reference: (source, contract) => onnxUnderTest(required(source.onnx, 'ONNX graph'), contract),
};

/**
 * An ONNX graph whose weights sit in external-data files beside it (as models past protobuf's
 * 2 GB limit must): the graph is read, the data files are chunked and uploaded from disk.
 */
const onnxExternal: ModelFormat = {
  release: 'onnx',
  async read(path) {
    const graph = await readBytes(path);
    const files: ReleaseFile[] = [inMemory('model.onnx', graph)];
    for (const [location, onDisk] of externalDataLocations(path, graph)) {
      files.push({ path: location, size: await sizeOf(onDisk), onDisk });
    }
    return { files, onnx: graph, tfjs: null };
  },
  check(path, source, { quantize, calibrated }) {
    // Quantizing, validating and profiling read the model from memory as one protobuf.
    if (quantize !== 'none' || calibrated) {
      const names = source.files.slice(1).map((f) => f.path);
      throw new CliError(
        `${path} keeps its weights in external data (${names.join(', ')}): ` +
          'publish it without --quantize and --calibration',
      );
    }
  },
  quantize: async (source) => unquantized(source),
  run: () => Promise.reject(new Error('an external-data model is published without validation')),
  reference: () => null,
};

/** A TensorFlow.js model.json with its weight shards; quantized in its weights manifest. */
const tfjs: ModelFormat = {
  release: 'tfjs',
  async read(path) {
    const model = await readTfjsModel(path);
    const files = [...model.files].map(([name, bytes]) => inMemory(name, bytes));
    return { files, onnx: null, tfjs: model };
  },
  check() {},
  async quantize(source, mode, onStep) {
    if (mode !== 'none') onStep(`${mode} weights in the weights manifest`);
    const { files, report } = quantizeTfjs(required(source.tfjs, 'tfjs model'), mode);
    return {
      files: [...files].map(([name, bytes]) => inMemory(name, bytes)),
      quantization: { method: mode as Release['quantization']['method'] },
      onnxReport: null,
      tfjsReport: report,
    };
  },
  run: (inputs, source, candidate) =>
    validateTfjs({
      ...inputs,
      reference: required(source.tfjs, 'tfjs model').files,
      candidate: new Map(candidate.files.map((f) => [f.path, bytesOf(f)])),
    }),
  reference: (source, contract) => tfjsUnderTest(required(source.tfjs, 'tfjs model').files, contract),
};

export type FormatName = 'onnx' | 'onnx-external' | 'tfjs';
export const FORMATS: Readonly<Record<FormatName, ModelFormat>> = Object.freeze({
  onnx,
  'onnx-external': onnxExternal,
  tfjs,
});

/** tfjs for a .json (or --format tfjs); ONNX otherwise, with external data when its graph names any. */
export async function detectFormat(path: string, flag?: 'onnx' | 'tfjs'): Promise<FormatName> {
  const format = flag ?? (extname(path).toLowerCase() === '.json' ? 'tfjs' : 'onnx');
  if (format === 'tfjs') return 'tfjs';
  return externalDataLocations(path, await readBytes(path)).size > 0 ? 'onnx-external' : 'onnx';
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
}
