import { GATE_VS_PRODUCTION, InputError } from '@edgeship/protocol';
import type { TensorContract } from '@edgeship/runtime/contract';
import { type Comparison, compareOutputs, type Labels, type RunOutputs } from './compare.ts';
import type { Carry, Feeds } from './run-sequence.ts';

/** Limits a candidate must stay within; each one set becomes a gate. */
export interface ValidationBudget {
  /** Mean |candidate - reference| over every compared output element of every frame. */
  maxMeanAbsDiff?: number;
  maxAbsDiff?: number;
  /** Share of elements of `output` on the same side of `threshold` in both models. */
  minAgreement?: { output: string; threshold: number; min: number };
  /** Accuracy against `labels` may drop by at most this much (needs labels). */
  maxAccuracyDrop?: number;
  /** Mean candidate inference time. Machine-dependent: set it generously. */
  maxLatencyMs?: number;
  maxSizeBytes?: number;
  /** The candidate's accuracy against `labels` must reach this (0..1), whatever any other model scores. */
  minAccuracy?: number;
}

/**
 * The channel's current production release, run on the same labelled frames: the candidate may
 * fall below its accuracy by at most `maxDrop` (champion/challenger). `model` null: the channel
 * has no production release, so there is nothing to fall below (the gate passes and says so).
 */
export interface ProductionCheck {
  model: ModelUnderTest | null;
  version: string | null;
  maxDrop: number;
}

/** What both models run on and what the candidate is held to, whatever runs them. */
export interface ValidationInputs {
  /**
   * Sequences of frames: each runs in order, its carried state starting afresh (one sequence per
   * clip for a streaming model; one single-frame sequence per example for a stateless one).
   */
  inputs: Feeds[][];
  budget: ValidationBudget;
  /** Expected answer per frame (all sequences' frames in order), for the accuracy gate. */
  labels?: Labels;
  carry?: Carry;
  /** Outputs to compare; default: all of the reference's outputs that are not carried state. */
  outputs?: string[];
  /**
   * The release's inputs and pre/postprocessing: every model runs each frame through the runtime's
   * own code for them, as devices do. Absent, frames run on the bare models.
   */
  contract?: TensorContract;
  /** Needs labels. */
  production?: ProductionCheck;
}

/** A loaded model the gates can run; one implementation per engine (onnxruntime-node, tfjs). */
export interface ModelRunner {
  /** The model's own output names, in its order. */
  readonly outputNames: readonly string[];
  /** Time to create the session or load the model, in ms. */
  readonly loadMs: number;
  /**
   * Runs one sequence in order, feeding carried outputs back in. Rejects with the engine's reason,
   * or with InputError when the carry names tensors the model does not have.
   */
  runSequence(
    frames: readonly Feeds[],
    carry?: Carry,
  ): Promise<{ outputs: RunOutputs[]; meanMs: number; feeds?: Feeds[] }>;
  release(): Promise<void>;
}

/** One side of the comparison: its size, and how to load it (a failed load is a failed gate). */
export interface ModelUnderTest {
  bytes: number;
  load(): Promise<ModelRunner>;
}

export interface Gate {
  name: string;
  passed: boolean;
  value: number | null;
  limit: number | null;
  message: string;
}

export interface ValidationReport {
  passed: boolean;
  gates: Gate[];
  /** Mean inference time per frame and session creation time, in ms; null where it did not run. */
  latency: {
    referenceMs: number | null;
    candidateMs: number | null;
    referenceLoadMs: number | null;
    candidateLoadMs: number | null;
  };
  sizes: { referenceBytes: number; candidateBytes: number; ratio: number };
  comparison: Comparison | null;
  /** The production release's accuracy on the same labelled frames, when it ran. */
  production: { version: string; accuracy: number } | null;
}

/**
 * Runs the reference and the candidate on the same frames and checks the candidate against the
 * budget. A candidate that fails to load or run is a failed gate, not an exception: the caller
 * prints the report either way. Only bad arguments throw (E_INPUT).
 */
export async function runGates(
  reference: ModelUnderTest,
  candidate: ModelUnderTest,
  opts: ValidationInputs,
): Promise<ValidationReport> {
  checkArguments(opts);
  const gates: Gate[] = [];
  const report: ValidationReport = {
    passed: false,
    gates,
    latency: { referenceMs: null, candidateMs: null, referenceLoadMs: null, candidateLoadMs: null },
    sizes: {
      referenceBytes: reference.bytes,
      candidateBytes: candidate.bytes,
      ratio: candidate.bytes / reference.bytes,
    },
    comparison: null,
    production: null,
  };
  const { maxSizeBytes } = opts.budget;
  if (maxSizeBytes !== undefined) {
    gates.push(limitGate('maxSizeBytes', candidate.bytes, maxSizeBytes, 'candidate size', 'bytes'));
  }

  const ref = await step(gates, 'reference-loads', 'reference model', () => reference.load());
  const cand = await step(gates, 'candidate-loads', 'candidate model', () => candidate.load());
  try {
    if (!ref || !cand) return finish(report);
    report.latency.referenceLoadMs = ref.loadMs;
    report.latency.candidateLoadMs = cand.loadMs;
    const refRun = await step(gates, 'reference-runs', 'reference model', () => runAll(ref, opts));
    const candRun = await step(gates, 'candidate-runs', 'candidate model', () => runAll(cand, opts));
    if (!refRun || !candRun) return finish(report);
    report.latency.referenceMs = refRun.meanMs;
    report.latency.candidateMs = candRun.meanMs;

    const names = opts.outputs ?? ref.outputNames.filter((n) => !(n in (opts.carry ?? {})));
    const comparison = compareOutputs(
      refRun.outputs,
      candRun.outputs,
      names,
      opts.budget.minAgreement,
      opts.labels,
    );
    report.comparison = comparison;
    gates.push({
      name: 'outputs-match',
      passed: comparison.mismatch === null,
      value: null,
      limit: null,
      message: comparison.mismatch ?? `outputs ${names.join(', ')} have the reference's shapes`,
    });
    gates.push({
      name: 'finite',
      passed: comparison.nonFinite === 0,
      value: comparison.nonFinite,
      limit: 0,
      message: `${comparison.nonFinite} non-finite candidate output values`,
    });
    if (comparison.mismatch === null) pushBudgetGates(gates, opts.budget, comparison, candRun.meanMs);
    if (comparison.accuracy && opts.labels && opts.production) {
      report.production = await productionGate(gates, opts, candRun.outputs, opts.labels, opts.production);
    }
    return finish(report);
  } finally {
    await ref?.release();
    await cand?.release();
  }
}

function pushBudgetGates(gates: Gate[], budget: ValidationBudget, c: Comparison, candidateMs: number): void {
  if (budget.maxMeanAbsDiff !== undefined) {
    gates.push(limitGate('maxMeanAbsDiff', c.meanAbsDiff, budget.maxMeanAbsDiff, 'mean |Δ|'));
  }
  if (budget.maxAbsDiff !== undefined) {
    gates.push(limitGate('maxAbsDiff', c.maxAbsDiff, budget.maxAbsDiff, 'max |Δ|'));
  }
  if (budget.minAgreement && c.agreement !== null) {
    const { output, threshold, min } = budget.minAgreement;
    gates.push({
      name: 'minAgreement',
      passed: c.agreement >= min,
      value: c.agreement,
      limit: min,
      message: `${output} agrees at threshold ${threshold} on ${pct(c.agreement)} (${c.agreement >= min ? '>=' : '<'} ${pct(min)})`,
    });
  }
  if (budget.maxAccuracyDrop !== undefined && c.accuracy) {
    const drop = c.accuracy.reference - c.accuracy.candidate;
    gates.push({
      ...limitGate('maxAccuracyDrop', drop, budget.maxAccuracyDrop, 'accuracy drop'),
      message: `accuracy ${pct(c.accuracy.candidate)} vs reference ${pct(c.accuracy.reference)} (drop ${pct(drop)}, limit ${pct(budget.maxAccuracyDrop)})`,
    });
  }
  if (budget.minAccuracy !== undefined && c.accuracy) {
    const { candidate } = c.accuracy;
    gates.push({
      name: 'min-accuracy',
      passed: candidate >= budget.minAccuracy,
      value: candidate,
      limit: budget.minAccuracy,
      message: `accuracy ${pct(candidate)} ${candidate >= budget.minAccuracy ? '>=' : '<'} minimum ${pct(budget.minAccuracy)}`,
    });
  }
  if (budget.maxLatencyMs !== undefined) {
    gates.push(limitGate('maxLatencyMs', candidateMs, budget.maxLatencyMs, 'candidate latency', 'ms'));
  }
}

/**
 * Runs the production release on the same frames and compares its accuracy with the candidate's.
 * A production release that does not load or run here (another contract, another engine) is a
 * failed gate: the candidate was not shown to be at least as good.
 */
async function productionGate(
  gates: Gate[],
  opts: ValidationInputs,
  candidate: RunOutputs[],
  labels: Labels,
  production: ProductionCheck,
): Promise<ValidationReport['production']> {
  const { model, version, maxDrop } = production;
  if (!model || version === null) {
    gates.push({
      name: GATE_VS_PRODUCTION,
      passed: true,
      value: null,
      limit: maxDrop,
      message: 'the channel has no production release: nothing to fall below',
    });
    return null;
  }
  const fail = (message: string) => {
    gates.push({ name: GATE_VS_PRODUCTION, passed: false, value: null, limit: maxDrop, message });
    return null;
  };
  let runner: ModelRunner;
  try {
    runner = await model.load();
  } catch (error) {
    return fail(`production ${version} failed to load: ${firstLine((error as Error).message)}`);
  }
  try {
    const run = await runAll(runner, opts);
    const c = compareOutputs(run.outputs, candidate, [], undefined, labels);
    if (!c.accuracy) return fail(`production ${version}: ${c.mismatch ?? 'no accuracy'}`);
    const drop = c.accuracy.reference - c.accuracy.candidate;
    gates.push({
      ...limitGate(GATE_VS_PRODUCTION, drop, maxDrop, 'accuracy drop against production'),
      message: `accuracy ${pct(c.accuracy.candidate)} vs production ${version} ${pct(c.accuracy.reference)} (drop ${pct(drop)}, limit ${pct(maxDrop)})`,
    });
    return { version, accuracy: c.accuracy.reference };
  } catch (error) {
    return fail(`production ${version} failed to run: ${firstLine((error as Error).message)}`);
  } finally {
    await runner.release();
  }
}

/** One line for a report: what passed, or every gate that failed and why. */
export function summarizeValidation(report: ValidationReport): string {
  const failed = report.gates.filter((g) => !g.passed);
  if (failed.length === 0) {
    const c = report.comparison;
    const diff = c ? `, mean |Δ| ${fmt(c.meanAbsDiff)}, max |Δ| ${fmt(c.maxAbsDiff)}` : '';
    return `validation passed: ${report.gates.length} gates${diff}, size ${pct(report.sizes.ratio)} of reference`;
  }
  return `validation failed: ${failed.map((g) => `${g.name}: ${g.message}`).join('; ')}`;
}

/** Runs every sequence; outputs in order, mean time per frame over all of them. */
async function runAll(
  runner: ModelRunner,
  opts: ValidationInputs,
): Promise<{ outputs: RunOutputs[]; meanMs: number }> {
  const outputs: RunOutputs[] = [];
  let totalMs = 0;
  for (const sequence of opts.inputs) {
    const one = await runner.runSequence(sequence, opts.carry);
    outputs.push(...one.outputs);
    totalMs += one.meanMs * one.outputs.length;
  }
  return { outputs, meanMs: totalMs / outputs.length };
}

/** Runs one step; a thrown error becomes a failed gate (and null), success a passed one. */
async function step<T>(gates: Gate[], name: string, what: string, fn: () => Promise<T>): Promise<T | null> {
  try {
    const value = await fn();
    const verb = name.endsWith('loads') ? 'loads' : 'runs';
    gates.push({ name, passed: true, value: null, limit: null, message: `${what} ${verb}` });
    return value;
  } catch (error) {
    if (error instanceof InputError) throw error;
    const verb = name.endsWith('loads') ? 'failed to load' : 'failed to run';
    const reason = firstLine(error instanceof Error ? error.message : String(error));
    gates.push({ name, passed: false, value: null, limit: null, message: `${what} ${verb}: ${reason}` });
    return null;
  }
}

function limitGate(name: string, value: number, limit: number, what: string, unit = ''): Gate {
  const passed = value <= limit;
  const u = unit ? ` ${unit}` : '';
  return {
    name,
    passed,
    value,
    limit,
    message: `${what} ${fmt(value)}${u} ${passed ? '<=' : '>'} ${fmt(limit)}${u}`,
  };
}

function finish(report: ValidationReport): ValidationReport {
  report.passed = report.gates.every((g) => g.passed);
  return report;
}

function checkArguments(opts: ValidationInputs): void {
  const frames = opts.inputs.reduce((n, s) => n + s.length, 0);
  if (frames === 0 || opts.inputs.some((s) => s.length === 0)) {
    throw new InputError('validation needs at least one input frame in every sequence');
  }
  const { minAgreement, ...limits } = opts.budget;
  for (const [key, value] of Object.entries(limits)) {
    if (value === undefined) continue;
    if (!(typeof value === 'number' && value >= 0 && Number.isFinite(value))) {
      throw new InputError(`budget.${key} must be a finite number >= 0, got ${value}`);
    }
  }
  if (
    minAgreement &&
    !(Number.isFinite(minAgreement.threshold) && minAgreement.min >= 0 && minAgreement.min <= 1)
  ) {
    throw new InputError('budget.minAgreement needs a finite threshold and a min between 0 and 1');
  }
  if (opts.labels && opts.labels.expected.length !== frames) {
    throw new InputError(`${opts.labels.expected.length} labels for ${frames} frames`);
  }
  for (const key of ['maxAccuracyDrop', 'minAccuracy'] as const) {
    if (opts.budget[key] !== undefined && !opts.labels) throw new InputError(`budget.${key} needs labels`);
  }
  if (opts.budget.minAccuracy !== undefined && opts.budget.minAccuracy > 1) {
    throw new InputError(`budget.minAccuracy must be between 0 and 1, got ${opts.budget.minAccuracy}`);
  }
  if (opts.production && !opts.labels) throw new InputError('a check against production needs labels');
  if (opts.production && !(opts.production.maxDrop >= 0 && opts.production.maxDrop <= 1)) {
    throw new InputError(
      `the margin against production must be between 0 and 1, got ${opts.production.maxDrop}`,
    );
  }
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}

function fmt(x: number): string {
  return Math.abs(x) >= 1000 || x === 0 ? String(Math.round(x)) : String(Number(x.toPrecision(3)));
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}
