import { InputError } from '@edgeship/protocol';

export interface Wav {
  sampleRate: number;
  channels: number;
  /** Samples of the first channel, scaled to [-1, 1). */
  samples: Float32Array;
}

/** Reads a RIFF/WAVE file with 16-bit PCM samples (what make-audio.sh writes). */
export function readWav(bytes: Uint8Array): Wav {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') {
    throw new InputError('not a RIFF/WAVE file');
  }
  let format: { channels: number; sampleRate: number; bits: number; code: number } | undefined;
  // Chunks are [id, little-endian size, body], padded to an even length (RIFF spec).
  for (let at = 12; at + 8 <= bytes.length; ) {
    const id = tag(at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      format = {
        code: view.getUint16(body, true),
        channels: view.getUint16(body + 2, true),
        sampleRate: view.getUint32(body + 4, true),
        bits: view.getUint16(body + 14, true),
      };
    } else if (id === 'data') {
      // 1 = PCM; 0xfffe = WAVE_FORMAT_EXTENSIBLE, which sox uses for some files.
      if (!format || (format.code !== 1 && format.code !== 0xfffe) || format.bits !== 16) {
        throw new InputError('only 16-bit PCM WAV files are supported');
      }
      const end = Math.min(body + size, bytes.length);
      const frames = Math.floor((end - body) / (2 * format.channels));
      const samples = new Float32Array(frames);
      for (let i = 0; i < frames; i++)
        samples[i] = view.getInt16(body + i * 2 * format.channels, true) / 32768;
      return { sampleRate: format.sampleRate, channels: format.channels, samples };
    }
    at = body + size + (size & 1);
  }
  throw new InputError('WAV file has no data chunk');
}
