// Measures int8 and float16 Silero VAD v5 against float32: size, speech-probability drift, load and
// inference time (mean per 512-sample frame, after a warm-up run, recurrent state carried, one
// sequence per test clip). Run: npx tsx cli/scripts/measure-silero.ts (prints JSON).
import { quantizeOnnx } from '../src/quantize/quantize-onnx.ts';
import { compareOutputs } from '../src/validate/compare.ts';
import { loadSession, runSequence } from '../src/validate/run-sequence.ts';
import { readSileroV5, SILERO_CARRY, sileroTestClips } from '../test-data/silero.ts';

const float32 = readSileroV5();
const clips = sileroTestClips();

async function measure(bytes: Uint8Array) {
  const { session, loadMs } = await loadSession(bytes);
  const runs = [];
  for (const clip of clips) runs.push(await runSequence(session, clip.frames, SILERO_CARRY));
  await session.release();
  const frames = runs.reduce((n, r) => n + r.outputs.length, 0);
  const inferenceMs = runs.reduce((n, r) => n + r.meanMs * r.outputs.length, 0) / frames;
  return { bytes: bytes.length, loadMs, inferenceMs, runs };
}

// The first session of a process also initializes onnxruntime: keep that out of every model's load time.
await (await loadSession(float32)).session.release();
const reference = await measure(float32);
const result: Record<string, unknown> = {
  model: 'silero_vad_v5.onnx',
  frames: reference.runs.reduce((n, r) => n + r.outputs.length, 0),
  clips: clips.map((c) => c.name),
  float32: {
    bytes: reference.bytes,
    loadMs: round(reference.loadMs),
    inferenceMs: round(reference.inferenceMs),
  },
};
for (const mode of ['int8', 'float16'] as const) {
  const { bytes, report } = await quantizeOnnx(float32, { mode });
  const candidate = await measure(bytes);
  let sum = 0;
  let max = 0;
  let frames = 0;
  for (let i = 0; i < clips.length; i++) {
    const c = compareOutputs(reference.runs[i]!.outputs, candidate.runs[i]!.outputs, ['output']);
    sum += c.meanAbsDiff * c.frames;
    max = Math.max(max, c.maxAbsDiff);
    frames += c.frames;
  }
  result[mode] = {
    bytes: bytes.length,
    sizeRatio: round(bytes.length / float32.length, 4),
    tensorsQuantized: report.tensorsQuantized,
    tensorsSkipped: report.tensorsSkipped,
    speechProbMeanAbsDiff: round(sum / frames, 5),
    speechProbMaxAbsDiff: round(max, 5),
    loadMs: round(candidate.loadMs),
    inferenceMs: round(candidate.inferenceMs),
  };
}
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);

function round(x: number, digits = 3): number {
  return Number(x.toFixed(digits));
}
