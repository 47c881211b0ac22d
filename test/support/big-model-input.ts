// The browser-safe half of big-model.ts (which needs Node for onnx-proto): the generated
// model's shape constants and its deterministic input.

export const BIG_MODEL_OUTPUTS = 16;
export const EXTERNAL_DATA_PATH = 'model.onnx.data';

/** Deterministic weights in [-1/width, 1/width]: a few outputs of order 1, never non-finite. */
export function weights(count: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = ((state / 0x1_0000_0000) * 2 - 1) * scale;
  }
  return out;
}

/** A deterministic input frame for bigOnnxModel. */
export function bigModelInput(width: number): Float32Array {
  return weights(width, 7, 1);
}
