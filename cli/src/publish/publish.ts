import { readFile } from 'node:fs/promises';
import { basename, dirname, extname } from 'node:path';
import {
  describeFile,
  type FileEntry,
  Name,
  type Release,
  releaseId,
  SemVer,
  type SignedRelease,
  type SigningKeyPair,
  signRelease,
} from '@edgeship/protocol';
import { readBytes, readJsonFile } from '../commands/files.ts';
import { readSigningKey } from '../commands/keygen.ts';
import { CliError, EXIT } from '../commands/output.ts';
import { type QuantizeReport, quantizeOnnx } from '../quantize/quantize-onnx.ts';
import { adminClient, type UploadProgress } from '../server/admin.ts';
import {
  summarizeValidation,
  type ValidationBudget,
  type ValidationInputs,
  type ValidationReport,
} from '../validate/gates.ts';
import { validateOnnx } from '../validate/validate-onnx.ts';
import { validateTfjs } from '../validate/validate-tfjs.ts';
import { type Calibration, readCalibration } from './calibration.ts';
import { type Contract, ContractSchema } from './contract.ts';
import { readExternalData } from './external-data.ts';
import { gitCommit } from './lineage.ts';
import { type FeatureProfile, profileMonitoring } from './profile.ts';
import { quantizeTfjs, readTfjsModel, type TfjsQuantizeReport } from './tfjs.ts';

/** int8 is ONNX only; uint8 and uint16 are TensorFlow.js weight quantization only. */
export type Quantize = 'int8' | 'uint8' | 'uint16' | 'float16' | 'none';

export interface PublishBudget {
  maxSizeBytes?: number;
  maxLatencyMs?: number;
  /** Mean |quantized - float| over the compared outputs; default 0.01 when quantizing. */
  maxMeanAbsDiff?: number;
  /** Share of frames where the decision output lands on the same side of its threshold (0..1). */
  minAgreement?: number;
  /**
   * With labelled calibration data: how much accuracy (0..1) the published model may lose against
   * the float model; default 0.01 when labels are given.
   */
  maxAccuracyDrop?: number;
}

export interface PublishOptions {
  /** An .onnx file, or a TensorFlow.js model.json (its weight shards beside it). */
  model: string;
  name: string;
  version: string;
  format?: 'onnx' | 'tfjs';
  quantize?: Quantize;
  /** A directory of .wav or .json inputs: the validation and profiling data. */
  calibration?: string;
  /** A contract file path, or the contract itself. */
  contract: string | unknown;
  server?: string;
  token?: string;
  /** Token for the rollout step (an operator's); default: `token`, then EDGESHIP_OPERATOR_TOKEN. */
  operatorToken?: string;
  publisherKey: string | SigningKeyPair;
  app?: string;
  channel?: string;
  /** Start a rollout at this share, in percent (0..100). */
  rollout?: number;
  mode?: 'canary' | 'shadow';
  minRuntime?: string;
  budget?: PublishBudget;
  /** A model card file (Markdown), stored with the release. */
  modelCard?: string;
  /** Stop after signing: nothing is sent. */
  dryRun?: boolean;
  onStep?: (step: PublishStep, detail: string) => void;
  onProgress?: (progress: UploadProgress) => void;
}

export type PublishStep = 'quantize' | 'validate' | 'profile' | 'sign' | 'upload' | 'register' | 'rollout';

export interface PublishResult {
  release: string;
  signed: SignedRelease;
  quantization: QuantizeReport | null;
  tfjsQuantization: TfjsQuantizeReport | null;
  validation: ValidationReport | null;
  profile: FeatureProfile[];
  metrics: Record<string, number>;
  lineage: { sourceCommit?: string; datasetHash?: string; parameters: Record<string, unknown> };
  upload: { chunksUploaded: number; bytesUploaded: number } | null;
  rollout: { id: string; shareBps: number; mode: string } | null;
}

/** A gate refused the model; the report says which and why. */
export class GateError extends CliError {
  constructor(readonly report: ValidationReport) {
    super(summarizeValidation(report), EXIT.failed, 'E_GATE');
    this.name = 'GateError';
    this.details = { validation: report };
  }
}

export const DEFAULT_MAX_MAD = 0.01;
export const DEFAULT_MAX_ACCURACY_DROP = 0.01;

/**
 * quantize → validate (gates) → profile → sign → upload → register → rollout. Every input is
 * checked, and the server and the publisher key with it, before any slow step runs.
 */
export async function publishModel(opts: PublishOptions): Promise<PublishResult> {
  const step = (s: PublishStep, detail: string) => opts.onStep?.(s, detail);
  const quantize = opts.quantize ?? 'none';
  if (!['int8', 'uint8', 'uint16', 'float16', 'none'].includes(quantize)) {
    throw new CliError(`--quantize ${quantize}: use int8, uint8, uint16, float16 or none`, EXIT.usage);
  }
  const name = checked(Name, opts.name, '--name');
  const version = checked(SemVer, opts.version, '--version');
  const minRuntime = checked(SemVer, opts.minRuntime ?? '0.1.0', '--min-runtime');
  const format = opts.format ?? (extname(opts.model).toLowerCase() === '.json' ? 'tfjs' : 'onnx');
  const rolloutBps = opts.rollout === undefined ? null : shareBps(opts.rollout);
  if (rolloutBps !== null && (!opts.app || !opts.channel)) {
    throw new CliError('--rollout needs --app and --channel', EXIT.usage);
  }
  const contract = await readContract(opts.contract);
  const key =
    typeof opts.publisherKey === 'string' ? await readSigningKey(opts.publisherKey) : opts.publisherKey;
  const modelCard = opts.modelCard ? await readText(opts.modelCard) : undefined;
  const source = format === 'onnx' ? null : await readTfjsModel(opts.model);
  const float = format === 'onnx' ? await readBytes(opts.model) : null;
  const externalData = float ? await readExternalData(opts.model, float) : new Map<string, Uint8Array>();
  // Quantizing, validating and profiling read the model from memory as one protobuf.
  if (externalData.size > 0 && (quantize !== 'none' || opts.calibration)) {
    throw new CliError(
      `${opts.model} keeps its weights in external data (${[...externalData.keys()].join(', ')}): ` +
        'publish it without --quantize and --calibration',
      EXIT.usage,
    );
  }
  const calibration = opts.calibration ? await readCalibration(opts.calibration, contract) : null;
  if (quantize !== 'none' && !calibration) {
    throw new CliError(
      '--quantize needs --calibration: a quantized model is only published once validated',
      EXIT.usage,
    );
  }
  const publisher = opts.dryRun ? null : adminClient(opts);
  if (publisher) await checkServer(publisher, opts, key);

  // 1. Quantize.
  let quantization: QuantizeReport | null = null;
  let tfjsReport: TfjsQuantizeReport | null = null;
  let files: Map<string, Uint8Array>;
  if (format === 'onnx') {
    let bytes = float!;
    if (quantize === 'uint8' || quantize === 'uint16') {
      throw new CliError(`--quantize ${quantize} is for tfjs models; ONNX takes int8 or float16`, EXIT.usage);
    }
    if (quantize !== 'none') {
      step('quantize', `${quantize} weights`);
      ({ bytes, report: quantization } = await quantizeOnnx(float!, { mode: quantize }));
    }
    // model.onnx first, then its external-data files: the runtime hands those to ORT's externalData.
    files = new Map([['model.onnx', bytes], ...externalData]);
  } else {
    if (quantize !== 'none') step('quantize', `${quantize} weights in the weights manifest`);
    const tfjs = quantizeTfjs(source!, quantize);
    files = tfjs.files;
    tfjsReport = tfjs.report;
  }
  const releaseQuantization: Release['quantization'] = {
    method: quantize as Release['quantization']['method'],
    ...(quantization && quantize === 'int8' ? { perChannel: quantization.perChannel } : {}),
  };
  const totalBytes = [...files.values()].reduce((n, b) => n + b.length, 0);

  // 2. Validate: the gates.
  const budget: ValidationBudget = {
    maxSizeBytes: opts.budget?.maxSizeBytes,
    maxLatencyMs: opts.budget?.maxLatencyMs,
    maxMeanAbsDiff: opts.budget?.maxMeanAbsDiff ?? (quantize === 'none' ? undefined : DEFAULT_MAX_MAD),
    // Labels make the task metric the gate: accuracy, not only agreement with the float model.
    maxAccuracyDrop: calibration?.labels
      ? (opts.budget?.maxAccuracyDrop ?? DEFAULT_MAX_ACCURACY_DROP)
      : undefined,
  };
  let validation: ValidationReport | null = null;
  if (calibration) {
    step('validate', `${calibration.frames} frames from ${calibration.files.length} files`);
    const inputs = validationInputs(contract, calibration, budget, opts.budget?.minAgreement);
    // Both formats run through the same gates; only the engine differs.
    validation =
      format === 'onnx'
        ? await validateOnnx({
            ...inputs,
            reference: float!,
            candidate: [...files.values()][0]!,
            candidateQuantization: releaseQuantization,
          })
        : await validateTfjs({ ...inputs, reference: source!.files, candidate: files });
    if (!validation.passed) throw new GateError(validation);
  } else if (budget.maxSizeBytes !== undefined && totalBytes > budget.maxSizeBytes) {
    throw new CliError(
      `size gate: ${totalBytes} bytes > ${budget.maxSizeBytes} bytes`,
      EXIT.failed,
      'E_GATE',
    );
  }

  // 3. Profile the monitored features on the float model.
  let monitoring: Release['monitoring'] = { features: [] };
  let profile: FeatureProfile[] = [];
  if (contract.monitoring.features.length > 0) {
    if (!calibration || !float) {
      throw new CliError(
        'monitored features need --calibration data and an ONNX model to profile',
        EXIT.usage,
      );
    }
    step('profile', contract.monitoring.features.map((f) => f.name).join(', '));
    ({ monitoring, features: profile } = await profileMonitoring(float, calibration.sequences, contract));
  } else if (contract.monitoring.decision) {
    monitoring = { features: [], decision: contract.monitoring.decision };
  }

  // 4. Sign.
  step('sign', `with publisher key ${key.keyId.slice(0, 12)}…`);
  const entries: FileEntry[] = [];
  for (const [path, bytes] of files) entries.push(await describeFile(path, bytes));
  const release: Release = {
    type: 'edgeship/release',
    model: name,
    version,
    format,
    files: entries,
    quantization: releaseQuantization,
    inputs: contract.inputs,
    outputs: contract.outputs,
    preprocessing: contract.preprocessing,
    postprocessing: contract.postprocessing,
    monitoring,
    ...(contract.recurrent.length > 0 ? { recurrent: contract.recurrent } : {}),
    minRuntimeVersion: minRuntime,
    createdAt: new Date().toISOString(),
  };
  const signed = await signRelease(release, [key]);
  const sourceBytes = float?.length ?? tfjsReport!.bytesBefore;
  const metrics = metricsOf(totalBytes, sourceBytes, validation, calibration);
  if (tfjsReport && tfjsReport.mode !== 'none') metrics.weightMeanAbsDiff = tfjsReport.weightMeanAbsDiff;
  const lineage = {
    sourceCommit: await gitCommit(dirname(opts.model)),
    datasetHash: calibration?.datasetHash,
    parameters: {
      quantize,
      ...(quantization
        ? { perChannel: quantization.perChannel, tensorsQuantized: quantization.tensorsQuantized }
        : {}),
      budget: Object.fromEntries(Object.entries(budget).filter(([, v]) => v !== undefined)),
      calibrationFiles: calibration?.files.length ?? 0,
      sourceFile: basename(opts.model),
    },
  };
  const result: PublishResult = {
    release: releaseId(release),
    signed,
    quantization,
    tfjsQuantization: tfjsReport,
    validation,
    profile,
    metrics,
    lineage,
    upload: null,
    rollout: null,
  };
  if (!publisher) return result;

  // 5. Upload the chunks the server lacks; a re-run after an interruption sends only the rest.
  step('upload', `${entries.reduce((n, f) => n + f.chunks.length, 0)} chunks, ${totalBytes} bytes`);
  result.upload = await publisher.uploadRelease(signed, files, { onProgress: opts.onProgress });

  // 6. Register with metrics, lineage and model card.
  step('register', result.release);
  await publisher.registerRelease({ release: signed, metrics, lineage: dropUndefined(lineage), modelCard });

  // 7. Optionally start a rollout.
  if (rolloutBps !== null) {
    step('rollout', `${rolloutBps / 100}% of ${opts.app}/${opts.channel}`);
    const operator = adminClient(
      { server: opts.server, token: opts.operatorToken ?? process.env.EDGESHIP_OPERATOR_TOKEN ?? opts.token },
      'EDGESHIP_TOKEN',
    );
    const rollout = await operator.createRollout({
      app: opts.app!,
      channel: opts.channel!,
      model: name,
      release: version,
      shareBps: rolloutBps,
      mode: opts.mode ?? 'canary',
    });
    result.rollout = { id: rollout.id, shareBps: rollout.shareBps, mode: rollout.mode };
  }
  return result;
}

/** Fails fast, before quantizing: the server answers, the token is good, the key is trusted. */
async function checkServer(
  client: ReturnType<typeof adminClient>,
  opts: PublishOptions,
  key: SigningKeyPair,
): Promise<void> {
  const who = await client.whoami();
  if (who.role !== 'publisher') {
    throw new CliError(
      `the token is a ${who.role}'s; publishing needs a publisher token`,
      EXIT.auth,
      'E_FORBIDDEN',
    );
  }
  const server = (opts.server ?? process.env.EDGESHIP_SERVER)!.replace(/\/$/, '');
  let keySet: { signed?: { publisherKeys?: Array<{ keyId: string }> } };
  try {
    keySet = (await (await fetch(`${server}/v1/keyset`)).json()) as typeof keySet;
  } catch (error) {
    throw new CliError(
      `cannot read the server's key set: ${(error as Error).message}`,
      EXIT.unreachable,
      'E_NETWORK',
    );
  }
  const trusted = keySet.signed?.publisherKeys?.map((k) => k.keyId) ?? [];
  if (!trusted.includes(key.keyId)) {
    throw new CliError(
      `publisher key ${key.keyId.slice(0, 12)}… is not in the server's key set; devices would refuse the release`,
      EXIT.failed,
      'E_UNKNOWN_KEY',
    );
  }
}

/** What the gates run on and hold the candidate to, from the contract and the calibration data. */
function validationInputs(
  contract: Contract,
  calibration: Calibration,
  budget: ValidationBudget,
  minAgreement: number | undefined,
): ValidationInputs {
  const decision = contract.monitoring.decision;
  const compared =
    contract.compare ?? contract.outputs.map((o) => o.name).filter((n) => !(n in contract.carry));
  return {
    inputs: calibration.sequences,
    carry: contract.carry,
    outputs: compared,
    // A 0/1 label is judged against the decision threshold; otherwise the label is a class index.
    labels: calibration.labels
      ? {
          output: decision?.tensor ?? (contract.compare ?? contract.outputs.map((o) => o.name))[0]!,
          expected: calibration.labels,
          threshold: decision?.threshold,
        }
      : undefined,
    budget: {
      ...budget,
      // The decision output's agreement is always measured; it gates only with --min-agreement.
      ...(decision
        ? { minAgreement: { output: decision.tensor, threshold: decision.threshold, min: minAgreement ?? 0 } }
        : {}),
    },
  };
}

function metricsOf(
  totalBytes: number,
  sourceBytes: number,
  validation: ValidationReport | null,
  calibration: Calibration | null,
): Record<string, number> {
  const c = validation?.comparison;
  const all: Record<string, number | null | undefined> = {
    sizeBytes: totalBytes,
    sizeRatio: totalBytes / sourceBytes,
    meanAbsDiff: c?.meanAbsDiff,
    maxAbsDiff: c?.maxAbsDiff,
    agreement: c?.agreement,
    accuracy: c?.accuracy?.candidate,
    referenceAccuracy: c?.accuracy?.reference,
    latencyMs: validation?.latency.candidateMs,
    referenceLatencyMs: validation?.latency.referenceMs,
    loadMs: validation?.latency.candidateLoadMs,
    calibrationFrames: calibration?.frames,
  };
  return Object.fromEntries(
    Object.entries(all).filter(
      (e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]),
    ),
  );
}

async function readContract(contract: string | unknown): Promise<Contract> {
  const value = typeof contract === 'string' ? await readJsonFile(contract) : contract;
  const parsed = ContractSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const what = typeof contract === 'string' ? contract : 'contract';
    throw new CliError(
      `${what}: ${issue.path.join('.') || '(root)'}: ${issue.message}`,
      EXIT.usage,
      'E_MALFORMED',
    );
  }
  return parsed.data;
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`, EXIT.usage);
  }
}

function checked<T>(
  schema: { safeParse(v: unknown): { success: boolean; data?: T } },
  value: unknown,
  flag: string,
): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new CliError(`${flag} ${String(value)} is not valid`, EXIT.usage);
  return result.data as T;
}

function shareBps(percent: number): number {
  if (!(Number.isFinite(percent) && percent >= 0 && percent <= 100)) {
    throw new CliError(`--rollout ${percent}: a percentage from 0 to 100`, EXIT.usage);
  }
  return Math.round(percent * 100);
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
