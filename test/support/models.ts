import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Release } from '@edgeship/protocol';

const require = createRequire(import.meta.url);

/** Real pretrained Silero VAD v5, as shipped in the @ricky0123/vad-web npm package. */
export function sileroPath(variant: 'v5' | 'v6' = 'v5'): string {
  return join(
    dirname(require.resolve('@ricky0123/vad-web/package.json')),
    'dist',
    `silero_vad_${variant}.onnx`,
  );
}

export async function sileroBytes(variant: 'v5' | 'v6' = 'v5'): Promise<Uint8Array> {
  return new Uint8Array(await readFile(sileroPath(variant)));
}

/** Silero VAD's contract: 512-sample 16 kHz frames, a recurrent state, a speech probability. */
export const SILERO_CONTRACT: Pick<
  Release,
  'inputs' | 'outputs' | 'preprocessing' | 'postprocessing' | 'monitoring' | 'recurrent'
> = {
  inputs: [
    { name: 'input', dtype: 'float32', shape: [1, 512], range: { min: -1, max: 1 } },
    { name: 'state', dtype: 'float32', shape: [2, 1, 128] },
    { name: 'sr', dtype: 'int64', shape: [], range: { min: 16000, max: 16000 } },
  ],
  outputs: [
    { name: 'output', dtype: 'float32', shape: [1, 1], range: { min: 0, max: 1 } },
    { name: 'stateN', dtype: 'float32', shape: [2, 1, 128] },
  ],
  preprocessing: [],
  postprocessing: [],
  monitoring: {
    features: [
      {
        name: 'frame_rms',
        source: { from: 'input', tensor: 'input', reduce: 'rms' },
        binEdges: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3],
        reference: [0.2, 0.15, 0.15, 0.15, 0.15, 0.1, 0.1],
      },
      {
        name: 'speech_probability',
        source: { from: 'output', tensor: 'output', reduce: 'first' },
        binEdges: [0.1, 0.3, 0.5, 0.7, 0.9],
        reference: [0.5, 0.1, 0.05, 0.05, 0.1, 0.2],
      },
    ],
    decision: { tensor: 'output', threshold: 0.5 },
  },
  recurrent: [{ output: 'stateN', input: 'state' }],
};

/**
 * The same model with a different ONNX doc string appended: a valid ModelProto (a repeated
 * scalar field, last one wins) whose bytes differ only at the end, so content-defined chunking
 * shares every chunk but the last.
 */
export function withDocString(model: Uint8Array, text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  if (payload.length > 127) throw new Error('keep the doc string under 128 bytes');
  const out = new Uint8Array(model.length + 2 + payload.length);
  out.set(model);
  out[model.length] = (6 << 3) | 2; // ModelProto.doc_string = 6, length-delimited
  out[model.length + 1] = payload.length;
  out.set(payload, model.length + 2);
  return out;
}
