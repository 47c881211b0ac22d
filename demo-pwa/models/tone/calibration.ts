import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeToneBatch, TONE_SAMPLES } from './generate.ts';

/** The demo's tone classifier (TF.js layers model) and the contract the demo publishes it with. */
export const TONE_MODEL = fileURLToPath(new URL('./model.json', import.meta.url));
export const TONE_CONTRACT = fileURLToPath(new URL('../../publish/tone.contract.json', import.meta.url));

/** Neither the trainer's training seed (20240601) nor its held-out seed (7777). */
export const TONE_CALIBRATION_SEED = 31_337;

/**
 * Writes labelled calibration data for the tone model into `dir`, as `edgeship publish
 * --calibration` reads it: `files` JSON sequences of `perFile` single-example frames, each labelled
 * with the index of its loudest tone. Returns the number of frames.
 */
export async function writeToneCalibration(
  dir: string,
  { files = 4, perFile = 50, seed = TONE_CALIBRATION_SEED } = {},
): Promise<number> {
  const batch = makeToneBatch(seed, files * perFile);
  for (let f = 0; f < files; f++) {
    const frames = [];
    const labels = [];
    for (let i = f * perFile; i < (f + 1) * perFile; i++) {
      const audio = batch.audio.subarray(i * TONE_SAMPLES, (i + 1) * TONE_SAMPLES);
      frames.push({ audio: { dims: [1, TONE_SAMPLES], data: Array.from(audio) } });
      labels.push(batch.labels[i]!);
    }
    await writeFile(join(dir, `tone-${f}.json`), JSON.stringify({ frames, labels }));
  }
  return files * perFile;
}
