import type { Release } from '@edgeship/protocol';
import type { NamedTensors } from '../engines/tensor.ts';

/**
 * How a shadow candidate's answer compares with the active release's on the same input: the
 * largest absolute difference over the decision tensor (or every shared float output), and
 * whether both land on the same side of the release's decision threshold.
 */
export function compareForShadow(
  candidate: Release,
  active: NamedTensors,
  shadow: NamedTensors,
): { maxAbsDiff: number; agreed: boolean } {
  const decision = candidate.monitoring.decision;
  const names = decision ? [decision.tensor] : Object.keys(active).filter((n) => n in shadow);
  let maxAbsDiff = 0;
  let agreed = true;
  for (const name of names) {
    const a = active[name]?.data;
    const b = shadow[name]?.data;
    if (!a || !b || a.length !== b.length) {
      return { maxAbsDiff: Number.POSITIVE_INFINITY, agreed: false };
    }
    for (let i = 0; i < a.length; i++) {
      const x = Number(a[i]);
      const y = Number(b[i]);
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(x - y));
      if (decision && x >= decision.threshold !== y >= decision.threshold) agreed = false;
    }
  }
  if (!decision) agreed = maxAbsDiff < 1e-3;
  return { maxAbsDiff, agreed };
}
