/**
 * Writes silero-reference.json: Silero VAD v5's outputs under onnxruntime-node on the sequence
 * from silero-input.ts. The browser tests hold onnxruntime-web to it; silero-reference.test.ts
 * regenerates it so the committed file cannot silently drift from what this script makes.
 *
 *   npx tsx runtime/test-fixtures/make-silero-reference.ts
 */
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sha256Hex } from '@edgeship/protocol';
import * as ort from 'onnxruntime-node';
import { sileroBytes, sileroPath } from '../../test/support/models.ts';
import {
  framesBytes,
  SILERO_FRAME,
  SILERO_SAMPLE_RATE,
  SILERO_STATE_DIMS,
  type SileroReference,
  sileroFrames,
} from './silero-input.ts';

export const REFERENCE_FILE = new URL('./silero-reference.json', import.meta.url);

export async function makeSileroReference(): Promise<SileroReference> {
  const model = await sileroBytes('v5');
  // One intra-op thread: the same reduction order on every run, so regeneration is repeatable.
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const frames = sileroFrames();
  const outputs: number[] = [];
  let state = new Float32Array(2 * 128);
  try {
    for (const frame of frames) {
      const results = await session.run({
        input: new ort.Tensor('float32', frame, [1, SILERO_FRAME]),
        state: new ort.Tensor('float32', state, SILERO_STATE_DIMS),
        sr: new ort.Tensor('int64', new BigInt64Array([BigInt(SILERO_SAMPLE_RATE)]), []),
      });
      state = new Float32Array(results.stateN!.data as Float32Array);
      outputs.push((results.output!.data as Float32Array)[0]!);
    }
  } finally {
    await session.release();
  }
  return {
    description:
      'Silero VAD v5 under onnxruntime-node on silero-input.ts, state carried frame to frame; made by make-silero-reference.ts',
    model: { file: basename(sileroPath('v5')), sha256: await sha256Hex(model) },
    generatedBy: { runtime: 'onnxruntime-node', version: ort.env.versions.common, intraOpNumThreads: 1 },
    input: {
      frames: frames.length,
      frameSamples: SILERO_FRAME,
      sampleRate: SILERO_SAMPLE_RATE,
      sha256: await sha256Hex(framesBytes(frames)),
    },
    outputs,
    finalState: Array.from(state),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const reference = await makeSileroReference();
  await writeFile(REFERENCE_FILE, `${JSON.stringify(reference)}\n`);
  console.log(
    `wrote silero-reference.json: ${reference.outputs.length} frames, outputs ${reference.outputs.map((p) => p.toFixed(3)).join(' ')}`,
  );
}
