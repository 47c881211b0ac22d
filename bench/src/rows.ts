import type { Row } from './result.ts';
import { ratio, round } from './stats.ts';

/** A row comparing a measured median with its same-run baseline. */
export function compared(
  metric: string,
  value: number,
  unit: string,
  baselineLabel: string,
  baseline: number,
  note?: string,
): Row {
  return {
    metric,
    value: round(value, 4),
    unit,
    baseline: { label: baselineLabel, value: round(baseline, 4) },
    ratio: round(ratio(value, baseline), 4),
    ...(note ? { note } : {}),
  };
}

export function plain(metric: string, value: number, unit: string, note?: string): Row {
  return { metric, value: round(value, 4), unit, ...(note ? { note } : {}) };
}
