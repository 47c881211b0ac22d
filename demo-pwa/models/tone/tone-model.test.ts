// The committed tone model: its files parse and match each other, and tfjs in Node (the trainer's
// own backend) still gives the reference.json outputs, so a re-train cannot drift silently.
import { readFile } from 'node:fs/promises';
import { LengthMismatchError, MalformedError, sha256Hex } from '@edgeship/protocol';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng, makeToneBatch, makeToneExample, makeToneMix, TONE_SAMPLES } from './generate.ts';
import { artifactsFromFiles, type ModelFiles } from './model-files.ts';
import reference from './reference.json';

const here = (file: string) => new URL(`./${file}`, import.meta.url);
let files: ModelFiles;

beforeAll(async () => {
  await tf.setBackend('cpu');
  files = {
    modelJson: await readFile(here('model.json'), 'utf8'),
    weights: new Uint8Array(await readFile(here('weights.bin'))),
  };
});

async function predict(model: tf.LayersModel, audio: Float32Array, rows: number): Promise<number[]> {
  const output = tf.tidy(() => model.predict(tf.tensor2d(audio, [rows, TONE_SAMPLES])) as tf.Tensor);
  const values = Array.from(await output.data());
  output.dispose();
  return values;
}

describe('tone model files', () => {
  it('are small and are the weights reference.json describes', async () => {
    expect(files.weights.byteLength).toBe(reference.weightsBytes);
    expect(files.weights.byteLength).toBeLessThan(16 * 1024);
    expect(await sha256Hex(files.weights)).toBe(reference.weightsSha256);
    expect(reference.heldOutAccuracy).toBeGreaterThanOrEqual(0.95);
  });

  it('reproduce reference.json under tfjs CPU, seeded examples and ambiguous mixes', async () => {
    const model = await tf.loadLayersModel(tf.io.fromMemory(artifactsFromFiles(files)));
    for (const example of reference.examples) {
      const got = await predict(model, makeToneExample(createRng(example.seed)).audio, 1);
      expect(Math.max(...got.map((p, i) => Math.abs(p - example.probabilities[i]!)))).toBeLessThan(1e-6);
    }
    for (const mix of reference.mixes) {
      const got = await predict(model, makeToneMix(mix.amplitudes as [number, number, number]), 1);
      expect(Math.max(...got.map((p, i) => Math.abs(p - mix.probabilities[i]!)))).toBeLessThan(1e-6);
    }
    // Not saturated: the mixes exercise the model where drift would show.
    expect(reference.mixes.some((m) => Math.max(...m.probabilities) < 0.8)).toBe(true);
    model.dispose();
  });

  it('classify fresh generated data (a seed neither training nor held-out used)', async () => {
    const model = await tf.loadLayersModel(tf.io.fromMemory(artifactsFromFiles(files)));
    const batch = makeToneBatch(123_456, 200);
    const probabilities = await predict(model, batch.audio, 200);
    let hits = 0;
    batch.labels.forEach((label, i) => {
      const row = probabilities.slice(i * 3, i * 3 + 3);
      if (row.indexOf(Math.max(...row)) === label) hits++;
    });
    expect(hits / 200).toBeGreaterThanOrEqual(0.95);
    model.dispose();
  });

  it('refuse a weights file that does not match model.json, with typed errors', () => {
    const short = { ...files, weights: files.weights.slice(4) };
    expect(() => artifactsFromFiles(short)).toThrow(LengthMismatchError);
    expect(() => artifactsFromFiles({ ...files, modelJson: '{' })).toThrow(MalformedError);
    const twoFiles = JSON.parse(files.modelJson);
    twoFiles.weightsManifest[0].paths.push('more.bin');
    expect(() => artifactsFromFiles({ ...files, modelJson: JSON.stringify(twoFiles) })).toThrow(
      /exactly one weights file/,
    );
  });
});

describe('generate', () => {
  it('is deterministic per seed and keeps audio inside [-1, 1]', () => {
    const a = makeToneBatch(5, 20);
    expect(makeToneBatch(5, 20)).toEqual(a);
    expect(makeToneBatch(6, 20).audio).not.toEqual(a.audio);
    expect(Math.max(...a.audio.map(Math.abs))).toBeLessThanOrEqual(1);
    expect(new Set(a.labels).size).toBe(3);
  });

  it('refuses bad seeds and counts with E_INPUT', () => {
    expect(() => createRng(-1)).toThrow(expect.objectContaining({ code: 'E_INPUT' }));
    expect(() => makeToneBatch(1, 0)).toThrow(expect.objectContaining({ code: 'E_INPUT' }));
  });
});
