import type { ModelHandle, ModelSchema, Runtime } from '@edgeship/runtime';

/** The demo's models and the array each tensor travels in: types every call end to end. */
export interface DemoModels extends ModelSchema {
  /** Silero VAD v5: 512-sample 16 kHz frames, a recurrent state, a speech probability. */
  vad: {
    inputs: { input: Float32Array; state: Float32Array; sr: BigInt64Array };
    outputs: { output: Float32Array; stateN: Float32Array };
  };
  /** The project's TF.js tone classifier: 1,024 samples in, three class probabilities out. */
  tone: {
    inputs: { audio: Float32Array };
    outputs: { probabilities: Float32Array };
  };
}

export type DemoRuntime = Runtime<DemoModels>;
export type VadModel = ModelHandle<DemoModels['vad']['inputs'], DemoModels['vad']['outputs']>;
export type ToneModel = ModelHandle<DemoModels['tone']['inputs'], DemoModels['tone']['outputs']>;
