import { numbersOf, type TensorLike } from './run-sequence.ts';

/** One frame's outputs by name, from any engine: onnxruntime's tensors and tfjs's copies alike. */
export type RunOutputs = Record<string, TensorLike>;

/**
 * The expected answer per frame. With a threshold, the prediction is whether the output's first
 * value reaches it (binary, e.g. speech / no speech); without one, the output's argmax (a class).
 */
export interface Labels {
  output: string;
  expected: number[];
  threshold?: number;
}

export interface Comparison {
  frames: number;
  /** Over every element of every compared output of every frame. */
  meanAbsDiff: number;
  maxAbsDiff: number;
  nonFinite: number;
  /** Share of decisions that agree, when a minAgreement output was given. */
  agreement: number | null;
  accuracy: { reference: number; candidate: number } | null;
  /** Why the outputs could not be compared (missing output, other shape), else null. */
  mismatch: string | null;
}

/** Compares two runs frame by frame. */
export function compareOutputs(
  reference: RunOutputs[],
  candidate: RunOutputs[],
  names: readonly string[],
  agreementOn?: { output: string; threshold: number },
  labels?: Labels,
): Comparison {
  const result: Comparison = {
    frames: reference.length,
    meanAbsDiff: 0,
    maxAbsDiff: 0,
    nonFinite: 0,
    agreement: null,
    accuracy: null,
    mismatch: null,
  };
  let sum = 0;
  let count = 0;
  let agreed = 0;
  let decisions = 0;
  let refCorrect = 0;
  let candCorrect = 0;
  for (let f = 0; f < reference.length; f++) {
    const ref = reference[f]!;
    const cand = candidate[f]!;
    for (const name of new Set([...names, ...(agreementOn ? [agreementOn.output] : [])])) {
      const r = ref[name];
      const c = cand[name];
      if (!r || !c) {
        result.mismatch = `output "${name}" is missing from the ${r ? 'candidate' : 'reference'}`;
        return result;
      }
      if (r.dims.join('x') !== c.dims.join('x')) {
        result.mismatch = `output "${name}" has shape [${c.dims}], the reference [${r.dims}]`;
        return result;
      }
      const a = numbersOf(r);
      const b = numbersOf(c);
      for (let i = 0; i < a.length; i++) {
        if (!Number.isFinite(b[i]!)) {
          result.nonFinite++;
          continue;
        }
        if (names.includes(name)) {
          const d = Math.abs(a[i]! - b[i]!);
          sum += d;
          count++;
          if (d > result.maxAbsDiff) result.maxAbsDiff = d;
        }
        if (agreementOn && name === agreementOn.output) {
          decisions++;
          if (a[i]! >= agreementOn.threshold === b[i]! >= agreementOn.threshold) agreed++;
        }
      }
    }
    if (labels) {
      const r = ref[labels.output];
      const c = cand[labels.output];
      if (!r || !c) {
        result.mismatch = `labelled output "${labels.output}" is missing`;
        return result;
      }
      const expected = labels.expected[f];
      if (predict(numbersOf(r), labels.threshold) === expected) refCorrect++;
      if (predict(numbersOf(c), labels.threshold) === expected) candCorrect++;
    }
  }
  result.meanAbsDiff = count === 0 ? 0 : sum / count;
  if (agreementOn) result.agreement = decisions === 0 ? 0 : agreed / decisions;
  if (labels) {
    const n = reference.length;
    result.accuracy = { reference: refCorrect / n, candidate: candCorrect / n };
  }
  return result;
}

function predict(values: Float64Array, threshold?: number): number {
  if (threshold !== undefined) return values[0]! >= threshold ? 1 : 0;
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
