/**
 * Trains the demo's tone classifier on generated data and writes model.json, weights.bin and
 * reference.json beside this file. Pure-JS TF.js (CPU backend): tfjs-node does not install here.
 *
 *   npx tsx demo-pwa/models/tone/train.ts
 */
import { writeFile } from 'node:fs/promises';
import { concatBytes, sha256Hex } from '@edgeship/protocol';
import * as tf from '@tensorflow/tfjs';
import {
  createRng,
  makeToneBatch,
  makeToneExample,
  makeToneMix,
  TONE_LABELS,
  TONE_SAMPLES,
} from './generate.ts';
import { filesFromArtifacts } from './model-files.ts';

/** Everything that decides the weights; recorded in reference.json. */
const TRAINING = {
  trainSeed: 20_240_601,
  // Pure-JS CPU training costs ~15 ms per example per epoch here; these keep it near a minute.
  trainCount: 2_400,
  heldOutSeed: 7_777,
  heldOutCount: 2_000,
  initSeed: 42,
  epochs: 3,
  batchSize: 50,
  learningRate: 0.01,
  convFilters: 8,
  convKernel: 32,
  convStride: 4,
  hiddenUnits: 16,
} as const;

/** Seeds of the reference examples; each one regenerates its input with makeToneExample(createRng(seed)). */
const REFERENCE_SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];
/** Ambiguous mixes (see makeToneMix): their probabilities sit between 0 and 1, where drift shows. */
const REFERENCE_MIXES: ReadonlyArray<readonly [number, number, number]> = [
  [0.4, 0.4, 0],
  [0, 0.35, 0.3],
  [0.25, 0.25, 0.25],
  [0.2, 0.3, 0.25],
];

const INPUT_NAME = 'audio';
const OUTPUT_NAME = 'probabilities';

const here = (file: string) => new URL(`./${file}`, import.meta.url);

/** reshape → conv1d (a bank of learned band-pass filters) → pooling (energy per band) → dense. */
function buildToneModel(): tf.LayersModel {
  const seeded = (offset: number) => tf.initializers.glorotUniform({ seed: TRAINING.initSeed + offset });
  const audio = tf.input({ shape: [TONE_SAMPLES], name: INPUT_NAME });
  let x = tf.layers.reshape({ targetShape: [TONE_SAMPLES, 1] }).apply(audio) as tf.SymbolicTensor;
  x = tf.layers
    .conv1d({
      filters: TRAINING.convFilters,
      kernelSize: TRAINING.convKernel,
      strides: TRAINING.convStride,
      activation: 'relu',
      kernelInitializer: seeded(0),
    })
    .apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling1d().apply(x) as tf.SymbolicTensor;
  x = tf.layers
    .dense({ units: TRAINING.hiddenUnits, activation: 'relu', kernelInitializer: seeded(1) })
    .apply(x) as tf.SymbolicTensor;
  const probabilities = tf.layers
    .dense({
      units: TONE_LABELS.length,
      activation: 'softmax',
      kernelInitializer: seeded(2),
      name: OUTPUT_NAME,
    })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: audio, outputs: probabilities, name: 'tone_classifier' });
}

async function accuracyOn(model: tf.LayersModel, audio: Float32Array, labels: Int32Array): Promise<number> {
  const predicted = tf.tidy(() =>
    (model.predict(tf.tensor2d(audio, [labels.length, TONE_SAMPLES])) as tf.Tensor).argMax(1),
  );
  const classes = await predicted.data();
  predicted.dispose();
  return labels.reduce((hits, label, i) => hits + (classes[i] === label ? 1 : 0), 0) / labels.length;
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const started = performance.now();
  const train = makeToneBatch(TRAINING.trainSeed, TRAINING.trainCount);
  const heldOut = makeToneBatch(TRAINING.heldOutSeed, TRAINING.heldOutCount);
  const datasetSha256 = await sha256Hex(
    concatBytes(new Uint8Array(train.audio.buffer), new Uint8Array(train.labels.buffer)),
  );

  const model = buildToneModel();
  model.compile({
    optimizer: tf.train.adam(TRAINING.learningRate),
    loss: 'sparseCategoricalCrossentropy',
    metrics: ['accuracy'],
  });
  const xs = tf.tensor2d(train.audio, [TRAINING.trainCount, TONE_SAMPLES]);
  const ys = tf.tensor1d(train.labels, 'float32');
  await model.fit(xs, ys, {
    epochs: TRAINING.epochs,
    batchSize: TRAINING.batchSize,
    // tf.util.shuffle uses Math.random; the generator already draws examples in random order.
    shuffle: false,
    verbose: 0,
    callbacks: {
      onEpochEnd: (epoch, logs) =>
        console.log(`epoch ${epoch + 1}: loss ${logs?.loss?.toFixed(4)} accuracy ${logs?.acc?.toFixed(4)}`),
    },
  });
  tf.dispose([xs, ys]);
  const trainSeconds = (performance.now() - started) / 1000;

  const heldOutAccuracy = await accuracyOn(model, heldOut.audio, heldOut.labels);
  console.log(`held-out accuracy ${heldOutAccuracy} after ${trainSeconds.toFixed(1)} s`);

  const predict = async (audio: Float32Array): Promise<number[]> => {
    const output = tf.tidy(() => model.predict(tf.tensor2d(audio, [1, TONE_SAMPLES])) as tf.Tensor);
    const probabilities = Array.from(await output.data());
    output.dispose();
    return probabilities;
  };
  const examples = [];
  for (const seed of REFERENCE_SEEDS) {
    const { audio, label } = makeToneExample(createRng(seed));
    examples.push({ seed, label, probabilities: await predict(audio) });
  }
  const mixes = [];
  for (const amplitudes of REFERENCE_MIXES)
    mixes.push({ amplitudes, probabilities: await predict(makeToneMix(amplitudes)) });

  let saved: { modelJson: string; weights: Uint8Array } | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = filesFromArtifacts(artifacts);
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  if (saved === undefined) throw new Error('model.save did not call the save handler');

  const reference = {
    description: 'Tone classifier: which of three tones is loudest in 1024 samples at 8 kHz.',
    tfjsVersion: tf.version.tfjs,
    input: { name: INPUT_NAME, dtype: 'float32', shape: [-1, TONE_SAMPLES] },
    output: { name: OUTPUT_NAME, dtype: 'float32', shape: [-1, TONE_LABELS.length] },
    labels: TONE_LABELS,
    training: TRAINING,
    datasetSha256,
    datasetHashCovers: 'train audio (float32 LE) then train labels (int32 LE)',
    heldOutAccuracy,
    trainSeconds: Math.round(trainSeconds),
    parameters: model.countParams(),
    weightsBytes: saved.weights.byteLength,
    weightsSha256: await sha256Hex(saved.weights),
    examples,
    mixes,
  };
  await writeFile(here('model.json'), saved.modelJson);
  await writeFile(here('weights.bin'), saved.weights);
  await writeFile(here('reference.json'), `${JSON.stringify(reference, null, 2)}\n`);
  console.log(`wrote model.json, weights.bin (${saved.weights.byteLength} bytes), reference.json`);
}

await main();
