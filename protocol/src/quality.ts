import type { NumericArray } from './features.ts';
import type { MonitoringSpec } from './release.ts';

/** At most this many distinct outcome names per release in one record (more are not counted). */
export const MAX_OUTCOMES_PER_RECORD = 16;
/** Outcome values are bounded so that sums of squares stay exact enough and finite. */
export const MAX_OUTCOME_VALUE = 1e6;

/** A release's classes as the device and the server read them (see MonitoringSpec.classes). */
export interface ClassSpec {
  tensor: string;
  labels: readonly string[];
  /** Two classes read off one score: the score at or above it is class 1. */
  threshold: number;
}

const BINARY_LABELS = ['negative', 'positive'] as const;

/**
 * The classes a release declares, or the binary pair its decision implies; null when the release
 * is no classifier (its feedback cannot be counted).
 */
export function classesOf(spec: MonitoringSpec): ClassSpec | null {
  if (spec.classes) {
    const sameTensor = spec.decision?.tensor === spec.classes.tensor;
    return {
      tensor: spec.classes.tensor,
      labels: spec.classes.labels,
      threshold: sameTensor ? spec.decision!.threshold : 0.5,
    };
  }
  if (spec.decision) {
    return { tensor: spec.decision.tensor, labels: BINARY_LABELS, threshold: spec.decision.threshold };
  }
  return null;
}

/** The predicted class of one inference (its output values), or null when they do not score the classes. */
export function predictedClass(classes: ClassSpec, values: NumericArray | undefined): number | null {
  if (!values || values.length === 0) return null;
  const n = classes.labels.length;
  if (values.length === 1) {
    if (n !== 2) return null;
    const v = Number(values[0]);
    return Number.isFinite(v) ? (v >= classes.threshold ? 1 : 0) : null;
  }
  if (values.length < n) return null;
  let best = 0;
  let bestValue = Number(values[0]);
  for (let i = 1; i < n; i++) {
    const v = Number(values[i]);
    if (v > bestValue) {
      best = i;
      bestValue = v;
    }
  }
  return Number.isFinite(bestValue) ? best : null;
}

/** A label as the app gives it (its name, or its index) as a class index; null when it is none of them. */
export function classIndex(classes: ClassSpec, label: string | number | boolean): number | null {
  if (typeof label === 'boolean') return classes.labels.length === 2 ? (label ? 1 : 0) : null;
  if (typeof label === 'number') {
    return Number.isInteger(label) && label >= 0 && label < classes.labels.length ? label : null;
  }
  const i = classes.labels.indexOf(label);
  return i === -1 ? null : i;
}
