/**
 * `pairs` pairs of one `measure` of side `a` and one of side `b`, in ABBA order (which side goes
 * first swaps every pair), so a load spike on the shared machine lands on both sides of a pair.
 * Each side's measures in pair order. Plain code: the page (main.ts) and the runner use it.
 */
export async function abbaPairs<S extends string, T>(
  pairs: number,
  a: S,
  b: S,
  measure: (side: S) => Promise<T>,
): Promise<[T[], T[]]> {
  const ofA: T[] = [];
  const ofB: T[] = [];
  for (let p = 0; p < pairs; p++) {
    if (p % 2 === 0) {
      ofA.push(await measure(a));
      ofB.push(await measure(b));
    } else {
      ofB.push(await measure(b));
      ofA.push(await measure(a));
    }
  }
  return [ofA, ofB];
}
