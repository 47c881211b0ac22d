import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { readWav } from '../src/publish/wav.ts';

/** Silero VAD v5 as @ricky0123/vad-web ships it (a dev dependency of the runtime workspace). */
export function readSileroV5(): Uint8Array {
  const candidates = [
    '../../node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx',
    '../../runtime/node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx',
  ].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  const path = candidates.find((p) => existsSync(p));
  if (!path)
    throw new Error(`silero_vad_v5.onnx not found; run npm install (looked in ${candidates.join(', ')})`);
  return new Uint8Array(readFileSync(path));
}

export const SILERO_FRAME = 512; // samples per frame at 16 kHz
export const SILERO_CARRY = { stateN: 'state' };
export const TEST_WAVS = ['speech-fox.wav', 'silence.wav', 'noise.wav', 'speech-in-noise.wav'];

export function readTestWav(name: string): Float32Array {
  const wav = readWav(new Uint8Array(readFileSync(fileURLToPath(new URL(name, import.meta.url)))));
  if (wav.sampleRate !== 16_000) throw new Error(`${name}: ${wav.sampleRate} Hz, Silero needs 16000`);
  return wav.samples;
}

/** Whole 512-sample frames of a clip as Silero feeds, each with a zero state (carry replaces it). */
export function sileroFrames(samples: Float32Array): Record<string, ort.Tensor>[] {
  const frames: Record<string, ort.Tensor>[] = [];
  for (let at = 0; at + SILERO_FRAME <= samples.length; at += SILERO_FRAME) {
    frames.push({
      input: new ort.Tensor('float32', samples.slice(at, at + SILERO_FRAME), [1, SILERO_FRAME]),
      state: new ort.Tensor('float32', new Float32Array(2 * 128), [2, 1, 128]),
      sr: new ort.Tensor('int64', BigInt64Array.of(16_000n), []),
    });
  }
  return frames;
}

/** Every test clip as its own frame sequence (each starts from a zero state). */
export function sileroTestClips(): { name: string; frames: Record<string, ort.Tensor>[] }[] {
  return TEST_WAVS.map((name) => ({ name, frames: sileroFrames(readTestWav(name)) }));
}
