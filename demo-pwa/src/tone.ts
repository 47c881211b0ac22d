import { createRng, makeToneExample, TONE_LABELS } from '../models/tone/generate.ts';
import type { ToneModel } from './models.ts';

/** Classifies one random synthetic tone mix with the project's TF.js model. */
export async function classifyRandomTone(tone: ToneModel, seed: number) {
  const example = makeToneExample(createRng(seed));
  const outputs = await tone.run({ audio: { data: example.audio, dims: [1, example.audio.length] } });
  const probabilities = Array.from(outputs.probabilities.data);
  const predicted = probabilities.indexOf(Math.max(...probabilities));
  return { predicted: TONE_LABELS[predicted]!, expected: TONE_LABELS[example.label]!, probabilities };
}
