import type { Tensor } from '@edgeship/runtime';
import { VAD_SAMPLE_RATE } from './audio.ts';
import type { VadModel } from './models.ts';
import { type Segment, speechSegments } from './segments.ts';

/** Silero VAD v5 reads 512 samples (32 ms at 16 kHz) per step and carries a recurrent state. */
export const VAD_FRAME = 512;
export const FRAME_SECONDS = VAD_FRAME / VAD_SAMPLE_RATE;
/** Frames per message to the worker (about one second of audio): the page redraws after each. */
export const FRAMES_PER_BATCH = 32;

export interface VadProgress {
  probabilities: number[];
  segments: Segment[];
  done: boolean;
}

/**
 * Runs Silero VAD over a clip in batches of frames: one sequence call per batch, the recurrent
 * state carried from frame to frame inside the runtime's worker and handed back between batches.
 * Reports segments as they grow (the page redraws live).
 */
export async function detectSpeech(
  vad: VadModel,
  samples: Float32Array,
  onProgress: (progress: VadProgress) => void,
  framesPerBatch = FRAMES_PER_BATCH,
): Promise<VadProgress> {
  const probabilities: number[] = [];
  const frames = Math.floor(samples.length / VAD_FRAME);
  let state: Tensor<Float32Array> = { data: new Float32Array(2 * 128), dims: [2, 1, 128] };
  for (let first = 0; first < frames; first += framesPerBatch) {
    const count = Math.min(framesPerBatch, frames - first);
    const { outputs, state: next } = await vad.runSequence({
      // A copy: the runtime transfers its inputs to the worker, detaching them.
      steps: {
        input: {
          data: samples.slice(first * VAD_FRAME, (first + count) * VAD_FRAME),
          dims: [count, 1, VAD_FRAME],
        },
      },
      inputs: { state, sr: { data: new BigInt64Array([BigInt(VAD_SAMPLE_RATE)]), dims: [] } },
      carry: { stateN: 'state' },
    });
    probabilities.push(...outputs.output.data);
    state = next.state;
    if (first + count < frames) {
      onProgress({
        probabilities,
        segments: speechSegments(probabilities, { frameSeconds: FRAME_SECONDS }),
        done: false,
      });
    }
  }
  const result = {
    probabilities,
    segments: speechSegments(probabilities, { frameSeconds: FRAME_SECONDS }),
    done: true,
  };
  onProgress(result);
  return result;
}
