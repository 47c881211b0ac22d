import { SEGMENT_DIMENSIONS, type SegmentDimension, type SegmentValues } from '@edgeship/protocol';

/** A part of the fleet a verdict is given on: all of it, or one value of one dimension. */
export interface Scope {
  /** 'all', or `${dimension}=${value}` ('browser=safari', 'backend=webgpu', 'os=other'). */
  name: string;
  dimension: SegmentDimension | null;
  value: string | null;
}

export const ALL_SCOPE: Scope = { name: 'all', dimension: null, value: null };
export const OTHER = 'other';

/**
 * The segments worth judging on their own. Per dimension, a value with fewer than `minInstalls`
 * installs in either arm is merged into 'other' (a small segment is noise, and a tiny one could
 * point at a few devices); a dimension left with one value says no more than 'all' and is skipped,
 * since every extra segment costs the others some of the family's error budget.
 */
export function scopesOf(
  arms: ReadonlyArray<ReadonlyArray<{ segment?: SegmentValues }>>,
  minInstalls: number,
): { scopes: Scope[]; merge: (dimension: SegmentDimension, value: string) => string } {
  const kept = new Map<SegmentDimension, Set<string>>();
  for (const dimension of SEGMENT_DIMENSIONS) {
    const counts = arms.map((rows) => countBy(rows, dimension));
    const values = new Set(counts.flatMap((c) => [...c.keys()]));
    kept.set(
      dimension,
      new Set([...values].filter((v) => counts.every((c) => (c.get(v) ?? 0) >= minInstalls))),
    );
  }
  const merge = (dimension: SegmentDimension, value: string) =>
    kept.get(dimension)!.has(value) ? value : OTHER;
  const scopes: Scope[] = [ALL_SCOPE];
  for (const dimension of SEGMENT_DIMENSIONS) {
    const merged = arms.map((rows) => countMerged(rows, dimension, merge));
    const values = [...new Set(merged.flatMap((c) => [...c.keys()]))].sort();
    if (values.length < 2) continue;
    for (const value of values) {
      if (merged.every((c) => (c.get(value) ?? 0) >= minInstalls)) {
        scopes.push({ name: `${dimension}=${value}`, dimension, value });
      }
    }
  }
  return { scopes, merge };
}

/** Installs per segment value of one dimension, after merging (what the fleet view shows). */
export function splitBy<T extends { segment?: SegmentValues }>(
  rows: readonly T[],
  dimension: SegmentDimension,
  merge: (dimension: SegmentDimension, value: string) => string,
): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    const value = merge(dimension, row.segment?.[dimension] ?? 'unknown');
    const list = out.get(value);
    if (list) list.push(row);
    else out.set(value, [row]);
  }
  return out;
}

/** Whether one install falls in a scope (after merging). */
export function inScope(
  row: { segment?: SegmentValues },
  scope: Scope,
  merge: (dimension: SegmentDimension, value: string) => string,
): boolean {
  if (scope.dimension === null) return true;
  return merge(scope.dimension, row.segment?.[scope.dimension] ?? 'unknown') === scope.value;
}

function countBy(rows: ReadonlyArray<{ segment?: SegmentValues }>, dimension: SegmentDimension) {
  const out = new Map<string, number>();
  for (const r of rows) {
    const v = r.segment?.[dimension] ?? 'unknown';
    out.set(v, (out.get(v) ?? 0) + 1);
  }
  return out;
}

function countMerged(
  rows: ReadonlyArray<{ segment?: SegmentValues }>,
  dimension: SegmentDimension,
  merge: (dimension: SegmentDimension, value: string) => string,
) {
  const out = new Map<string, number>();
  for (const r of rows) {
    const v = merge(dimension, r.segment?.[dimension] ?? 'unknown');
    out.set(v, (out.get(v) ?? 0) + 1);
  }
  return out;
}
