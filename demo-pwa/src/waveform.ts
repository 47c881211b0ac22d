import type { Segment } from './segments.ts';

/** Draws the waveform as per-pixel min/max bars, with speech segments shaded over it. */
export function drawWaveform(
  canvas: HTMLCanvasElement,
  samples: Float32Array,
  sampleRate: number,
  segments: Segment[],
): void {
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const { width, height } = canvas;
  const styles = getComputedStyle(canvas);
  ctx.clearRect(0, 0, width, height);
  const seconds = samples.length / sampleRate;
  ctx.fillStyle = styles.getPropertyValue('--speech') || 'rgba(15,118,110,0.3)';
  for (const { start, end } of segments) {
    ctx.fillRect((start / seconds) * width, 0, ((end - start) / seconds) * width, height);
  }
  ctx.fillStyle = styles.color;
  const perPixel = Math.max(1, Math.floor(samples.length / width));
  for (let x = 0; x < width; x++) {
    let min = 0;
    let max = 0;
    for (let i = x * perPixel; i < Math.min(samples.length, (x + 1) * perPixel); i++) {
      const v = samples[i]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const top = ((1 - max) / 2) * height;
    ctx.fillRect(x, top, 1, Math.max(1, ((max - min) / 2) * height));
  }
}
