import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import {
  type FileEntry,
  ForbiddenError,
  ModelCardSchema,
  Name,
  NetworkError,
  parseValue,
  type Release,
  type ReleaseGates,
  ReleaseLineageSchema,
  releaseId,
  SemVer,
  type SignedRelease,
  type SigningKeyPair,
  signRelease,
  type TrustedRoot,
  TrustedRootSchema,
  UnknownKeyError,
} from '@edgeship/protocol';
import type { UploadProgress } from '@edgeship/update-server/admin-client';
import { readJsonFile } from '../commands/files.ts';
import { readSigningKey } from '../commands/keygen.ts';
import { CliError } from '../commands/output.ts';
import type { QuantizeReport } from '../quantize/quantize-onnx.ts';
import { adminClient } from '../server/admin.ts';
import { GateError } from '../validate/gate-error.ts';
import type {
  ProductionCheck,
  ValidationBudget,
  ValidationInputs,
  ValidationReport,
} from '../validate/gates.ts';
import { releaseUnderTest } from '../validate/release-runner.ts';
import { type Calibration, readCalibration } from './calibration.ts';
import { type Contract, ContractSchema } from './contract.ts';
import { type Candidate, detectFormat, FORMATS, type Quantize } from './formats.ts';
import { gitCommit } from './lineage.ts';
import { fetchProduction } from './production.ts';
import { type FeatureProfile, profileMonitoring } from './profile.ts';
import { chunkReader, describeReleaseFile, totalBytes } from './release-files.ts';
import type { TfjsQuantizeReport } from './tfjs.ts';

export type { Quantize } from './formats.ts';

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
  /** With labelled gate data: the candidate's accuracy must reach this (0..1). */
  minAccuracy?: number;
  /**
   * With labelled gate data and --app/--channel: how much accuracy (0..1) the candidate may lose
   * against the channel's production release on the same data; default 0.01.
   */
  maxDropVsProduction?: number;
}

export interface PublishOptions {
  /** An .onnx file, or a TensorFlow.js model.json (its weight shards beside it). */
  model: string;
  name: string;
  version: string;
  format?: 'onnx' | 'tfjs';
  quantize?: Quantize;
  /** A directory of .wav or .json inputs: the gates' and the drift reference's data, unless these are given apart. */
  calibration?: string;
  /** Held-out (labelled) data the gates run on; default: `calibration`. */
  gateData?: string;
  /** Data the drift reference (monitored features' profile) is measured on; default: `calibration`. */
  referenceData?: string;
  /**
   * Pinned root keys (root.pub.json): the server's key set is verified against them before the
   * production release's signature is checked with it. Without, the server's key set is taken as is.
   */
  root?: string;
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
  /** A model card file (Markdown), stored with the release (not signed). */
  modelCard?: string;
  /**
   * A structured model card (JSON: intendedUse, limitations, trainingData, evaluation, segments),
   * validated and signed into the release, so operators and devices read what the publisher said.
   */
  card?: string;
  /** Lineage (JSON: trainingCode, data, hyperparameters, parent), signed into the release as self-reported. */
  lineage?: string;
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
  /** What the signed release records of the gates (absent: none ran). */
  gates: ReleaseGates | null;
  profile: FeatureProfile[];
  metrics: Record<string, number>;
  lineage: { sourceCommit?: string; datasetHash?: string; parameters: Record<string, unknown> };
  upload: { chunksUploaded: number; bytesUploaded: number } | null;
  rollout: { id: string; shareBps: number; mode: string } | null;
}

export const DEFAULT_MAX_MAD = 0.01;
export const DEFAULT_MAX_ACCURACY_DROP = 0.01;

/**
 * read → quantize → validate (gates) → profile → sign → upload → register → rollout, the same
 * sequence for every format (formats.ts says how each is read, quantized and run). Every input is
 * checked, and the server and the publisher key with it, before any slow step runs.
 */
export async function publishModel(opts: PublishOptions): Promise<PublishResult> {
  const step = (s: PublishStep, detail: string) => opts.onStep?.(s, detail);
  const quantize = checkedQuantize(opts.quantize ?? 'none');
  const name = checked(Name, opts.name, '--name');
  const version = checked(SemVer, opts.version, '--version');
  const minRuntime = checked(SemVer, opts.minRuntime ?? '0.1.0', '--min-runtime');
  const rolloutBps = opts.rollout === undefined ? null : shareBps(opts.rollout);
  if (rolloutBps !== null && (!opts.app || !opts.channel)) {
    throw new CliError('--rollout needs --app and --channel');
  }
  const contract = await readContract(opts.contract);
  const key =
    typeof opts.publisherKey === 'string' ? await readSigningKey(opts.publisherKey) : opts.publisherKey;
  const modelCard = opts.modelCard ? await readText(opts.modelCard) : undefined;
  // Read and checked before any work, so a bad file costs nothing.
  const card = opts.card ? parseValue(ModelCardSchema, await readJsonFile(opts.card), opts.card) : undefined;
  const signedLineage = opts.lineage
    ? parseValue(ReleaseLineageSchema, await readJsonFile(opts.lineage), opts.lineage)
    : undefined;
  const format = FORMATS[await detectFormat(opts.model, opts.format)];
  const source = await format.read(opts.model);
  const gateDir = opts.gateData ?? opts.calibration;
  const referenceDir = opts.referenceData ?? opts.calibration;
  format.check(opts.model, source, { quantize, calibrated: Boolean(gateDir ?? referenceDir) });
  // The gates' held-out data and the drift reference's data are declared apart (or both are --calibration).
  const calibration = gateDir ? await readCalibration(gateDir, contract) : null;
  const referenceData =
    referenceDir === gateDir
      ? calibration
      : referenceDir
        ? await readCalibration(referenceDir, contract)
        : null;
  if (quantize !== 'none' && !calibration) {
    throw new CliError(
      '--quantize needs --calibration or --gate-data: a quantized model is only published once validated',
    );
  }
  const root = opts.root
    ? (parseValue(TrustedRootSchema, await readJsonFile(opts.root), opts.root) as TrustedRoot)
    : undefined;
  const publisher = opts.dryRun ? null : adminClient(opts);
  if (publisher) await checkServer(publisher, key);
  // Champion/challenger: with labelled data and a channel, the candidate runs against what the
  // channel serves now, downloaded and verified before anything slow runs.
  let production: ProductionCheck | undefined;
  if (publisher && calibration?.labels && opts.app && opts.channel) {
    const current = await fetchProduction(
      publisher,
      { app: opts.app, channel: opts.channel, model: name },
      root,
    );
    production = {
      model: current ? releaseUnderTest(current.release, current.files) : null,
      version: current?.version ?? null,
      maxDrop: opts.budget?.maxDropVsProduction ?? DEFAULT_MAX_ACCURACY_DROP,
    };
  }

  // 1. Quantize.
  const candidate = await format.quantize(source, quantize, (detail) => step('quantize', detail));
  const sizeBytes = totalBytes(candidate.files);

  // 2. Validate: the gates, the same for every format; only the engine differs.
  const budget = budgetOf(opts.budget, quantize, calibration);
  let validation: ValidationReport | null = null;
  if (calibration) {
    step('validate', `${calibration.frames} frames from ${calibration.files.length} files`);
    const inputs = validationInputs(contract, calibration, budget, opts.budget?.minAgreement);
    validation = await format.run({ ...inputs, production }, source, candidate);
    if (!validation.passed) throw new GateError(validation);
  } else if (budget.maxSizeBytes !== undefined && sizeBytes > budget.maxSizeBytes) {
    throw new GateError(`size gate: ${sizeBytes} bytes > ${budget.maxSizeBytes} bytes`);
  }

  // 3. Profile the monitored features on the float model, through the release's contract.
  let monitoring: Release['monitoring'] = { features: [] };
  let profile: FeatureProfile[] = [];
  if (contract.monitoring.features.length > 0) {
    const model = format.reference(source, contract);
    if (!referenceData || !model) {
      throw new CliError(
        'monitored features need --calibration or --reference-data, and a model read into memory to profile',
      );
    }
    step('profile', contract.monitoring.features.map((f) => f.name).join(', '));
    ({ monitoring, features: profile } = await profileMonitoring(model, referenceData.sequences, contract));
  } else if (contract.monitoring.decision) {
    monitoring = { features: [], decision: contract.monitoring.decision };
  }

  // 4. Sign: each file chunked and hashed as it is read.
  step('sign', `with publisher key ${key.keyId.slice(0, 12)}…`);
  const entries: FileEntry[] = [];
  for (const file of candidate.files) entries.push(await describeReleaseFile(file));
  const release: Release = {
    type: 'edgeship/release',
    model: name,
    version,
    format: format.release,
    files: entries,
    quantization: candidate.quantization,
    inputs: contract.inputs,
    outputs: contract.outputs,
    preprocessing: contract.preprocessing,
    postprocessing: contract.postprocessing,
    monitoring,
    ...(contract.recurrent.length > 0 ? { recurrent: contract.recurrent } : {}),
    ...(card ? { modelCard: card } : {}),
    ...(signedLineage ? { lineage: signedLineage } : {}),
    minRuntimeVersion: minRuntime,
    createdAt: new Date().toISOString(),
  };
  const gates = validation && calibration ? gatesRecord(validation, calibration, opts, production) : null;
  if (gates) release.gates = gates;
  const signed = await signRelease(release, [key]);
  const metrics = metricsOf(sizeBytes, totalBytes(source.files), validation, calibration);
  if (candidate.tfjsReport && candidate.tfjsReport.mode !== 'none')
    metrics.weightMeanAbsDiff = candidate.tfjsReport.weightMeanAbsDiff;
  const result: PublishResult = {
    release: releaseId(release),
    signed,
    quantization: candidate.onnxReport,
    tfjsQuantization: candidate.tfjsReport,
    validation,
    gates,
    profile,
    metrics,
    lineage: await lineageOf(opts.model, quantize, candidate, budget, calibration, referenceData),
    upload: null,
    rollout: null,
  };
  if (!publisher) return result;

  // 5. Upload the chunks the server lacks, read one at a time; a re-run after an interruption
  // sends only the rest.
  step('upload', `${entries.reduce((n, f) => n + f.chunks.length, 0)} chunks, ${sizeBytes} bytes`);
  result.upload = await publisher.uploadRelease(signed, chunkReader(candidate.files), {
    onProgress: opts.onProgress,
  });

  // 6. Register with metrics, lineage and model card.
  step('register', result.release);
  await publisher.registerRelease({
    release: signed,
    metrics,
    lineage: dropUndefined(result.lineage),
    modelCard,
  });

  // 7. Optionally start a rollout.
  if (rolloutBps !== null) {
    step('rollout', `${rolloutBps / 100}% of ${opts.app}/${opts.channel}`);
    result.rollout = await startRollout(opts, name, version, rolloutBps);
  }
  return result;
}

const QUANTIZE_MODES: readonly Quantize[] = ['int8', 'uint8', 'uint16', 'float16', 'none'];

function checkedQuantize(mode: string): Quantize {
  if (!QUANTIZE_MODES.includes(mode as Quantize)) {
    throw new CliError(`--quantize ${mode}: use int8, uint8, uint16, float16 or none`);
  }
  return mode as Quantize;
}

function budgetOf(
  budget: PublishBudget | undefined,
  quantize: Quantize,
  calibration: Calibration | null,
): ValidationBudget {
  return {
    maxSizeBytes: budget?.maxSizeBytes,
    maxLatencyMs: budget?.maxLatencyMs,
    maxMeanAbsDiff: budget?.maxMeanAbsDiff ?? (quantize === 'none' ? undefined : DEFAULT_MAX_MAD),
    // Labels make the task metric the gate: accuracy, not only agreement with the float model.
    maxAccuracyDrop: calibration?.labels ? (budget?.maxAccuracyDrop ?? DEFAULT_MAX_ACCURACY_DROP) : undefined,
    minAccuracy: budget?.minAccuracy,
  };
}

/**
 * What the signed release says of its gates: each one that ran with its number and limit (all
 * passed, or nothing is signed), the data they ran on, and the production release compared with.
 */
function gatesRecord(
  validation: ValidationReport,
  data: Calibration,
  opts: PublishOptions,
  production: ProductionCheck | undefined,
): ReleaseGates {
  const finite = (x: number | null) => (x !== null && Number.isFinite(x) ? x : null);
  return {
    dataset: data.datasetHash,
    frames: data.frames,
    results: validation.gates
      .slice(0, 32)
      .map((g) => ({ name: g.name, value: finite(g.value), limit: finite(g.limit) })),
    ...(production && opts.app && opts.channel
      ? { against: { app: opts.app, channel: opts.channel, version: production.version } }
      : {}),
  };
}

async function lineageOf(
  model: string,
  quantize: Quantize,
  candidate: Candidate,
  budget: ValidationBudget,
  calibration: Calibration | null,
  referenceData: Calibration | null,
): Promise<PublishResult['lineage']> {
  const report = candidate.onnxReport;
  return {
    sourceCommit: await gitCommit(dirname(model)),
    datasetHash: calibration?.datasetHash,
    parameters: {
      quantize,
      ...(report ? { perChannel: report.perChannel, tensorsQuantized: report.tensorsQuantized } : {}),
      budget: Object.fromEntries(Object.entries(budget).filter(([, v]) => v !== undefined)),
      calibrationFiles: calibration?.files.length ?? 0,
      // The drift reference's data, when it is not the gates' (datasetHash).
      ...(referenceData && referenceData !== calibration
        ? { referenceDatasetHash: referenceData.datasetHash }
        : {}),
      sourceFile: basename(model),
    },
  };
}

async function startRollout(
  opts: PublishOptions,
  model: string,
  version: string,
  shareBps: number,
): Promise<PublishResult['rollout']> {
  const operator = adminClient(
    { server: opts.server, token: opts.operatorToken ?? process.env.EDGESHIP_OPERATOR_TOKEN ?? opts.token },
    'EDGESHIP_TOKEN',
  );
  const rollout = await operator.createRollout({
    // publishModel checked both are set before anything ran.
    app: opts.app as string,
    channel: opts.channel as string,
    model,
    release: version,
    shareBps,
    mode: opts.mode ?? 'canary',
  });
  return { id: rollout.id, shareBps: rollout.shareBps, mode: rollout.mode };
}

/** Fails fast, before quantizing: the server answers, the token is good, the key is trusted. */
async function checkServer(client: ReturnType<typeof adminClient>, key: SigningKeyPair): Promise<void> {
  const who = await client.whoami();
  if (who.role !== 'publisher') {
    throw new ForbiddenError(`the token is a ${who.role}'s; publishing needs a publisher token`);
  }
  let trusted: string[];
  try {
    trusted = (await client.keySet()).signed.publisherKeys.map((k) => k.keyId);
  } catch (error) {
    throw new NetworkError(`cannot read the server's key set: ${(error as Error).message}`);
  }
  if (!trusted.includes(key.keyId)) {
    throw new UnknownKeyError(
      `publisher key ${key.keyId.slice(0, 12)}… is not in the server's key set; devices would refuse the release`,
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
    contract,
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
    productionAccuracy: validation?.production?.accuracy,
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
    throw new CliError(`${what}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
}

function checked<T>(
  schema: { safeParse(v: unknown): { success: boolean; data?: T } },
  value: unknown,
  flag: string,
): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new CliError(`${flag} ${String(value)} is not valid`);
  return result.data as T;
}

function shareBps(percent: number): number {
  if (!(Number.isFinite(percent) && percent >= 0 && percent <= 100)) {
    throw new CliError(`--rollout ${percent}: a percentage from 0 to 100`);
  }
  return Math.round(percent * 100);
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
