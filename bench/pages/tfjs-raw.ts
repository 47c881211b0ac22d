// Raw tfjs (the baseline for the tfjs model): a layers model from in-memory files on one backend.
import * as tf from '@tensorflow/tfjs';

export interface TfjsModelFiles {
  modelJson: string;
  weights: Uint8Array;
}

export async function loadRawTfjs(files: TfjsModelFiles, backend: string) {
  await tf.setBackend(backend);
  await tf.ready();
  const json = JSON.parse(files.modelJson) as tf.io.ModelJSON;
  const specs = json.weightsManifest.flatMap((group) => group.weights);
  const model = await tf.loadLayersModel(
    tf.io.fromMemory(tf.io.getModelArtifactsForJSONSync(json, specs, files.weights.slice().buffer)),
  );
  return async (audio: Float32Array): Promise<Float32Array> => {
    const input = tf.tensor2d(audio, [1, audio.length]);
    const output = model.predict(input) as tf.Tensor;
    const data = (await output.data()) as Float32Array;
    input.dispose();
    output.dispose();
    return data;
  };
}
