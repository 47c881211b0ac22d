// 5. Quantization: Silero VAD v5 int8 (the CLI's quantizer) versus float32, in onnxruntime-node:
// file size, session load time, inference time per frame and output agreement on the CLI's
// recorded test clips (speech, silence, noise, speech in noise).
import { quantizeOnnx } from '../../cli/src/quantize/quantize-onnx.ts';
import { compareOutputs } from '../../cli/src/validate/compare.ts';
import { loadSession, runSequence } from '../../cli/src/validate/run-sequence.ts';
import { readSileroV5, SILERO_CARRY, sileroTestClips } from '../../cli/test-data/silero.ts';
import type { Benchmark } from './result.ts';
import { compared, plain } from './rows.ts';
import { median, round } from './stats.ts';

export const quantization: Benchmark = async (ctx) => {
  const reps = ctx.quick ? 3 : 9;
  const float32 = readSileroV5();
  const { bytes: int8, report } = await quantizeOnnx(float32, { mode: 'int8' });
  const clips = sileroTestClips();
  const frames = clips.reduce((n, c) => n + c.frames.length, 0);
  // The first session of a process also initialises onnxruntime: keep it out of both.
  await (await loadSession(float32)).session.release();

  // int8 as devices open it (weights dequantized once, at load: onnxSessionOptions), and as ORT
  // opens it by default (DequantizeLinear on every run), to show what the session option buys.
  const variants = {
    float32: { bytes: float32, quantization: { method: 'none' } },
    int8: { bytes: int8, quantization: { method: 'int8' } },
    int8Unfolded: { bytes: int8, quantization: { method: 'none' } },
  } as const;
  type Name = keyof typeof variants;
  const names = Object.keys(variants) as Name[];
  const loadMs = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<Name, number[]>;
  const frameMs = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<Name, number[]>;
  const outputs = {} as Record<Name, Awaited<ReturnType<typeof runSequence>>['outputs'][]>;
  for (let rep = 0; rep < reps; rep++) {
    ctx.log(`quantization rep ${rep + 1}/${reps}`);
    // Rotate the order, so no variant always runs first (or on a warmer cache).
    const order = names.map((_, i) => names[(i + rep) % names.length]!);
    for (const name of order) {
      const { session, loadMs: ms } = await loadSession(variants[name].bytes, variants[name].quantization);
      loadMs[name].push(ms);
      let total = 0;
      const runs = [];
      for (const clip of clips) {
        const run = await runSequence(session, clip.frames, SILERO_CARRY);
        total += run.meanMs * run.outputs.length;
        runs.push(run.outputs);
      }
      frameMs[name].push(total / frames);
      if (rep === 0) outputs[name] = runs;
      await session.release();
    }
  }
  let sum = 0;
  let max = 0;
  let agreed = 0;
  for (let i = 0; i < clips.length; i++) {
    const c = compareOutputs(outputs.float32[i]!, outputs.int8[i]!, ['output'], {
      output: 'output',
      threshold: 0.5,
    });
    sum += c.meanAbsDiff * c.frames;
    max = Math.max(max, c.maxAbsDiff);
    agreed += (c.agreement ?? 0) * c.frames;
  }
  const load = { float32: median(loadMs.float32), int8: median(loadMs.int8) };
  const infer = {
    float32: median(frameMs.float32),
    int8: median(frameMs.int8),
    int8Unfolded: median(frameMs.int8Unfolded),
  };
  return {
    name: 'quantization',
    title: 'Quantization: Silero VAD v5 int8 versus float32 (onnxruntime-node, CPU)',
    settings: { reps, frames, clips: clips.map((c) => c.name), perChannel: report.perChannel },
    rows: [
      compared('file size, int8', int8.length, 'B', 'float32', float32.length),
      compared('session load, int8', load.int8, 'ms', 'float32', load.float32),
      compared('inference per 512-sample frame, int8', infer.int8, 'ms', 'float32', infer.float32),
      compared(
        'inference per frame, int8 with ORT defaults (no folding)',
        infer.int8Unfolded,
        'ms',
        'float32',
        infer.float32,
      ),
      plain('speech probability, mean abs(int8 − float32)', sum / frames, 'abs'),
      plain('speech probability, max abs(int8 − float32)', max, 'abs'),
      plain('speech / no-speech decisions that agree (threshold 0.5)', (agreed / frames) * 100, '%'),
    ],
    goals: [],
    notes: [
      `${report.tensorsQuantized} tensors quantized, ${report.tensorsSkipped} left float32 (quantizeOnnx, per-channel ${report.perChannel}).`,
      'The issue sets no goal here; the ratios are the result. The int8 file keeps its weights as int8 behind DequantizeLinear nodes: it saves download bytes. Devices open it with session.disable_quant_qdq (onnxSessionOptions), so ORT folds those nodes once at load and inference runs on float32 weights; "ORT defaults" is the same file without that option.',
    ],
    raw: { loadMs, frameMs, meanAbsDiff: round(sum / frames, 6), maxAbsDiff: round(max, 6) },
  };
};
