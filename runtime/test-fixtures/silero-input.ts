/**
 * The deterministic input sequence Silero VAD is checked on, in Node (onnxruntime-node) and in
 * Chromium (onnxruntime-web). Browser-safe: no Node APIs. The recurrent state is carried from
 * frame to frame, so a drift in any step would compound and show up in later frames.
 */
import { mulberry32 } from '@edgeship/protocol';

export const SILERO_SAMPLE_RATE = 16_000;
export const SILERO_FRAME = 512;
export const SILERO_STATE_DIMS = [2, 1, 128];
export const SILERO_FRAME_COUNT = 24;
const SEED = 0x5113;

/**
 * 24 frames (0.77 s) of: quiet noise, a voiced-like harmonic stack with a gliding pitch and a
 * syllable-rate envelope, a pure tone, loud noise and silence, so the speech probability moves.
 */
export function sileroFrames(): Float32Array[] {
  const random = mulberry32(SEED);
  const noise = () => random() * 2 - 1;
  const frames: Float32Array[] = [];
  let phase = 0;
  for (let f = 0; f < SILERO_FRAME_COUNT; f++) {
    const frame = new Float32Array(SILERO_FRAME);
    for (let i = 0; i < SILERO_FRAME; i++) {
      const t = (f * SILERO_FRAME + i) / SILERO_SAMPLE_RATE;
      let sample: number;
      if (f < 4) sample = 0.01 * noise();
      else if (f < 14) {
        // A 120-180 Hz glottal-like pitch with 8 harmonics, amplitude-modulated at 4 Hz.
        const pitch = 120 + 60 * Math.sin(2 * Math.PI * 1.5 * t);
        phase += (2 * Math.PI * pitch) / SILERO_SAMPLE_RATE;
        let voiced = 0;
        for (let h = 1; h <= 8; h++) voiced += Math.sin(h * phase) / h;
        const envelope = 0.5 + 0.5 * Math.sin(2 * Math.PI * 4 * t);
        sample = 0.25 * envelope * voiced + 0.005 * noise();
      } else if (f < 18) sample = 0.4 * Math.sin(2 * Math.PI * 1_000 * t);
      else if (f < 21) sample = 0.3 * noise();
      else sample = 0;
      frame[i] = Math.max(-1, Math.min(1, sample));
    }
    frames.push(frame);
  }
  return frames;
}

export interface SileroReference {
  description: string;
  model: { file: string; sha256: string };
  generatedBy: { runtime: 'onnxruntime-node'; version: string; intraOpNumThreads: 1 };
  input: { frames: number; frameSamples: number; sampleRate: number; sha256: string };
  /** The speech probability after each frame. */
  outputs: number[];
  /** The recurrent state after the last frame (2 × 1 × 128): carries every earlier step's error. */
  finalState: number[];
}

/** All frames as one byte sequence (float32 little-endian), for the input hash. */
export function framesBytes(frames: readonly Float32Array[]): Uint8Array {
  const out = new Uint8Array(frames.length * SILERO_FRAME * 4);
  frames.forEach((frame, i) => {
    out.set(new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength), i * SILERO_FRAME * 4);
  });
  return out;
}
