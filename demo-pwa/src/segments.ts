/** Turning per-frame speech probabilities into speech segments, with hysteresis. */

export interface SegmentOptions {
  /** Seconds per frame (Silero VAD: 512 samples at 16 kHz = 0.032 s). */
  frameSeconds: number;
  /** A segment starts when the probability reaches this. */
  startThreshold?: number;
  /** and ends once it stays below this for `endFrames` frames. */
  endThreshold?: number;
  endFrames?: number;
  /** Shorter segments are dropped as clicks. */
  minSpeechSeconds?: number;
}

export interface Segment {
  start: number;
  end: number;
}

export function speechSegments(probabilities: readonly number[], options: SegmentOptions): Segment[] {
  const {
    frameSeconds,
    startThreshold = 0.5,
    endThreshold = 0.35,
    endFrames = 8,
    minSpeechSeconds = 0.25,
  } = options;
  const segments: Segment[] = [];
  let start: number | null = null;
  let quiet = 0;
  const close = (endFrame: number) => {
    if (start === null) return;
    const segment = { start: start * frameSeconds, end: endFrame * frameSeconds };
    if (segment.end - segment.start >= minSpeechSeconds) segments.push(segment);
    start = null;
  };
  probabilities.forEach((p, i) => {
    if (start === null) {
      if (p >= startThreshold) {
        start = i;
        quiet = 0;
      }
      return;
    }
    quiet = p < endThreshold ? quiet + 1 : 0;
    if (quiet >= endFrames) close(i - quiet + 1);
  });
  close(probabilities.length - (start === null ? 0 : quiet));
  return segments;
}
