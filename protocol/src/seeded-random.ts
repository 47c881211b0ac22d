// One seeded generator (Mulberry32) for everything that must replay the same sequence in Node and
// every browser: the chunker's gear table, which is part of the wire protocol, and test, bench
// and training data. It is not for secrets: keys and tokens come from crypto.getRandomValues.

/** Uniform 32-bit unsigned words from `seed`; the same sequence on every platform. */
export function mulberry32Words(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Uniform floats in [0, 1) from `seed`. */
export function mulberry32(seed: number): () => number {
  const next = mulberry32Words(seed);
  return () => next() / 4_294_967_296;
}

/** `length` deterministic bytes (little-endian words), so a failing case can be replayed. */
export function seededBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  const next = mulberry32Words(seed);
  for (let i = 0; i < length; i += 4) {
    const word = next();
    for (let b = 0; b < 4 && i + b < length; b++) out[i + b] = (word >>> (b * 8)) & 0xff;
  }
  return out;
}
