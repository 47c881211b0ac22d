// The seeded draws the simulated fleets make (canary/fleet-model.ts, bench/fleet/device.ts), one
// `random` call each where the comment does not say otherwise, so a seed gives the same fleet.

/** A standard normal draw (Box-Muller: two `random` calls). */
export function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** One entry of `list`, each as likely. */
export function pickOne<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)]!;
}

/** One entry of `mix`, each as likely as its share (shares that fall short of 1 favour the first). */
export function pickByShare<M extends readonly [{ share: number }, ...{ share: number }[]]>(
  random: () => number,
  mix: M,
): M[number] {
  const u = random();
  let cumulative = 0;
  return (
    mix.find((x) => {
      cumulative += x.share;
      return u < cumulative;
    }) ?? mix[0]
  );
}
