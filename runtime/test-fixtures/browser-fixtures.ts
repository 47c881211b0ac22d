/** What the engine browser tests share: same-origin URLs of ORT's WASM files and the models. */
import { sha256Hex } from '@edgeship/protocol';
import { server } from 'vitest/browser';
import type { TensorContract } from '../src/engines/pipeline.ts';
import type { NamedTensors } from '../src/engines/tensor.ts';
import type { SileroReference } from './silero-input.ts';
import reference from './silero-reference.json';

/**
 * What each browser of the suite (vitest.config.ts) offers the engines, so a test checks the
 * feature where it exists and the documented fallback where it does not, and fails when either
 * changes. Chromium runs WebGPU and WebGL on SwiftShader (its launch flags); Firefox ESR on Linux
 * has no WebGPU (navigator.gpu is missing) and no WebGL when headless (bugzil.la/1375585).
 */
const FEATURES: Record<string, { webgpu: boolean; webgl: boolean }> = {
  chromium: { webgpu: true, webgl: true },
  firefox: { webgpu: false, webgl: false },
};

export const BROWSER = server.browser;
export const HAS = (() => {
  const features = FEATURES[BROWSER];
  if (!features) throw new Error(`no feature list for ${BROWSER} in browser-fixtures.ts`);
  return features;
})();

/** onnxruntime-web's .wasm/.mjs, served by the Vite server from node_modules (no CDN). */
export const WASM_PATHS = new URL('/node_modules/onnxruntime-web/dist/', location.origin).href;

const SILERO_URL = new URL('/node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx', location.origin);
const TONE_DIR = new URL('/demo-pwa/models/tone/', location.origin);

async function bytesAt(url: URL): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** onnxruntime-node's answers on the reference sequence (make-silero-reference.ts wrote them). */
export const SILERO_REFERENCE = reference as SileroReference;

/** The real Silero VAD v5, checked against the hash the Node reference was made from. */
export async function sileroModel(): Promise<Uint8Array> {
  const bytes = await bytesAt(SILERO_URL);
  const actual = await sha256Hex(bytes);
  const expected = SILERO_REFERENCE.model.sha256;
  if (actual !== expected) throw new Error(`served Silero model is ${actual}, reference used ${expected}`);
  return bytes;
}

export async function toneFiles(): Promise<{ modelJson: unknown; weights: Uint8Array }> {
  const modelJson = JSON.parse(new TextDecoder().decode(await bytesAt(new URL('model.json', TONE_DIR))));
  return { modelJson, weights: await bytesAt(new URL('weights.bin', TONE_DIR)) };
}

/** One Silero frame with its recurrent state and sample rate, as the model's inputs. */
export function sileroFeeds(frame: Float32Array, state: Float32Array): NamedTensors {
  return {
    input: { data: frame, dims: [1, 512] },
    state: { data: state, dims: [2, 1, 128] },
    sr: { data: new BigInt64Array([16_000n]), dims: [] },
  };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** Silero's input contract, as test/support/models.ts publishes it (that module needs Node). */
export const SILERO_TENSORS: TensorContract = {
  inputs: [
    { name: 'input', dtype: 'float32', shape: [1, 512], range: { min: -1, max: 1 } },
    { name: 'state', dtype: 'float32', shape: [2, 1, 128] },
    { name: 'sr', dtype: 'int64', shape: [], range: { min: 16000, max: 16000 } },
  ],
  preprocessing: [],
  postprocessing: [],
};
