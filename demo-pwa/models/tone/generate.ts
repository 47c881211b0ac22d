/**
 * Synthetic examples for the tone classifier: a mix of three sine tones, one clearly loudest.
 * Browser-safe (no Node APIs): the demo page makes its inputs with this same code.
 */
import { InputError, mulberry32 } from '@edgeship/protocol';

export const TONE_SAMPLE_RATE = 8_000;
export const TONE_SAMPLES = 1_024;
export const TONE_FREQUENCIES = [440, 880, 1_760] as const;
export const TONE_LABELS = ['440 Hz (A4)', '880 Hz (A5)', '1760 Hz (A6)'] as const;

/** A number in [0, 1), like Math.random, but from a seed. */
export type Rng = () => number;

export interface ToneExample {
  /** TONE_SAMPLES samples at TONE_SAMPLE_RATE, in [-1, 1]. */
  audio: Float32Array;
  /** Index into TONE_LABELS of the loudest tone. */
  label: number;
  /** Peak amplitude of each tone before gain, so a reader can see how clear the winner is. */
  amplitudes: [number, number, number];
}

/** The other tones stay at most this fraction of the loudest one: "clearly loudest". */
const MAX_RUNNER_UP_RATIO = 0.6;

/** The protocol's seeded generator, checked: seeds are 32-bit unsigned integers. */
export function createRng(seed: number): Rng {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) {
    throw new InputError(`seed must be an integer in [0, 2^32), got ${seed}`);
  }
  return mulberry32(seed);
}

function uniform(rng: Rng, low: number, high: number): number {
  return low + (high - low) * rng();
}

/** Box-Muller; 1 - rng() keeps the logarithm's argument in (0, 1]. */
function gaussian(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}

export function makeToneExample(rng: Rng): ToneExample {
  const label = Math.floor(rng() * TONE_FREQUENCIES.length);
  const loudest = uniform(rng, 0.5, 1);
  const amplitudes = TONE_FREQUENCIES.map((_, i) =>
    i === label ? loudest : loudest * uniform(rng, 0, MAX_RUNNER_UP_RATIO),
  ) as [number, number, number];
  const phases = TONE_FREQUENCIES.map(() => uniform(rng, 0, 2 * Math.PI));
  // Normalising by the summed amplitudes keeps the clean mix inside [-1, 1] before gain and noise.
  const scale = uniform(rng, 0.1, 0.9) / amplitudes.reduce((sum, a) => sum + a, 0);
  const noiseLevel = uniform(rng, 0, 0.05);

  const audio = new Float32Array(TONE_SAMPLES);
  for (let n = 0; n < TONE_SAMPLES; n++) {
    let sample = 0;
    for (let i = 0; i < TONE_FREQUENCIES.length; i++) {
      const omega = (2 * Math.PI * TONE_FREQUENCIES[i]!) / TONE_SAMPLE_RATE;
      sample += amplitudes[i]! * Math.sin(omega * n + phases[i]!);
    }
    audio[n] = Math.max(-1, Math.min(1, sample * scale + noiseLevel * gaussian(rng)));
  }
  return { audio, label, amplitudes };
}

/**
 * A clean mix of the three tones at the given amplitudes (phase 0, no noise): the deliberately
 * ambiguous inputs in reference.json, where the probabilities are not saturated at 0 or 1.
 */
export function makeToneMix(amplitudes: readonly [number, number, number]): Float32Array {
  const audio = new Float32Array(TONE_SAMPLES);
  for (let n = 0; n < TONE_SAMPLES; n++) {
    let sample = 0;
    for (let i = 0; i < TONE_FREQUENCIES.length; i++) {
      sample += amplitudes[i]! * Math.sin((2 * Math.PI * TONE_FREQUENCIES[i]! * n) / TONE_SAMPLE_RATE);
    }
    audio[n] = Math.max(-1, Math.min(1, sample));
  }
  return audio;
}

export interface ToneBatch {
  /** count × TONE_SAMPLES, row-major: the model's `audio` input. */
  audio: Float32Array;
  labels: Int32Array;
}

/** `count` examples from one seeded stream: the same (seed, count) always gives the same batch. */
export function makeToneBatch(seed: number, count: number): ToneBatch {
  if (!Number.isInteger(count) || count < 1) {
    throw new InputError(`count must be a positive integer, got ${count}`);
  }
  const rng = createRng(seed);
  const audio = new Float32Array(count * TONE_SAMPLES);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const example = makeToneExample(rng);
    audio.set(example.audio, i * TONE_SAMPLES);
    labels[i] = example.label;
  }
  return { audio, labels };
}
