import type { NamedTensors, Runtime } from '@edgeship/runtime';
import { VAD_SAMPLE_RATE } from './audio.ts';
import { type Segment, speechSegments } from './segments.ts';

/** Silero VAD v5 reads 512 samples (32 ms at 16 kHz) per call and carries a recurrent state. */
export const VAD_FRAME = 512;
export const FRAME_SECONDS = VAD_FRAME / VAD_SAMPLE_RATE;

export interface VadProgress {
  probabilities: number[];
  segments: Segment[];
  done: boolean;
}

/**
 * Runs Silero VAD over a clip frame by frame in the runtime's worker, carrying the state from one
 * frame to the next, and reports segments as they grow (the page redraws live).
 */
export async function detectSpeech(
  runtime: Runtime,
  samples: Float32Array,
  onProgress: (progress: VadProgress) => void,
  reportEvery = 16,
): Promise<VadProgress> {
  const probabilities: number[] = [];
  let state = new Float32Array(2 * 128);
  const frames = Math.floor(samples.length / VAD_FRAME);
  for (let i = 0; i < frames; i++) {
    const inputs: NamedTensors = {
      // Copies: the runtime transfers its inputs to the worker, detaching them.
      input: { data: samples.slice(i * VAD_FRAME, (i + 1) * VAD_FRAME), dims: [1, VAD_FRAME] },
      state: { data: state, dims: [2, 1, 128] },
      sr: { data: new BigInt64Array([BigInt(VAD_SAMPLE_RATE)]), dims: [] },
    };
    const outputs = await runtime.run('vad', inputs);
    probabilities.push(outputs.output!.data[0] as number);
    state = outputs.stateN!.data as Float32Array<ArrayBuffer>;
    if (i % reportEvery === reportEvery - 1) {
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
