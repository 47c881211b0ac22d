// Deterministic 512-sample frames (a tone with noise, then near-silence), so every variant runs
// the same inputs; Silero's recurrent state is carried from one frame to the next.

export const FRAME = 512;
export const STATE_SIZE = 2 * 128;

export function frame(index: number): Float32Array {
  const out = new Float32Array(FRAME);
  let x = (index * 2654435761) >>> 0 || 1;
  const amplitude = index % 40 < 20 ? 0.3 : 0.003;
  for (let i = 0; i < FRAME; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const noise = ((x >>> 0) / 0xffffffff - 0.5) * 0.02;
    out[i] = amplitude * Math.sin((2 * Math.PI * 220 * (index * FRAME + i)) / 16_000) + noise;
  }
  return out;
}
