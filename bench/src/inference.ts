// 1. Inference overhead: runtime.run from the main thread (worker hop, validation, bookkeeping)
// versus raw onnxruntime-web session.run in a worker and on the main thread; same model, same
// frames, same backend (WASM, one thread). Plus how much each blocks the main thread.
import type { InferenceKind, InferenceRun } from '../pages/main.ts';
import { openBenchPage, startModelServer } from './browser/harness.ts';
import { cpuPairs } from './inference-pairs.ts';
import type { Benchmark } from './result.ts';
import { compared, plain } from './rows.ts';
import { bootstrap, median, percentile, round, trimmedMean } from './stats.ts';

type OrtKind = 'runtime' | 'raw-worker' | 'raw-main' | 'comlink-worker';
/** Frames per half of a wall-time pair: short, so both halves see the same load. */
const PAIR_BLOCK = 4;
const KINDS: OrtKind[] = ['runtime', 'raw-worker', 'raw-main', 'comlink-worker'];

export const inference: Benchmark = async (ctx) => {
  const reps = ctx.quick ? 3 : 7;
  const frames = ctx.quick ? 100 : 400;
  const pairedReps = ctx.quick ? 2 : 5;
  const pairsPerRep = ctx.quick ? 200 : 1000;
  const cpuPairCount = ctx.quick ? 4 : 12;
  const cpuFrames = 200;
  const warmup = 50;
  const models = await startModelServer();
  const session = await openBenchPage(models);
  try {
    const prepared = await session.call('prepareInference', `inference-${Date.now()}`, warmup);
    const runs: Record<OrtKind, InferenceRun[]> = {
      runtime: [],
      'raw-worker': [],
      'raw-main': [],
      'comlink-worker': [],
    };
    // Main-thread task time per run (Chromium's own accounting, through CDP).
    const busyMs: Record<OrtKind, number[]> = {
      runtime: [],
      'raw-worker': [],
      'raw-main': [],
      'comlink-worker': [],
    };
    for (let rep = 0; rep < reps; rep++) {
      // Rotate the order so drift in machine load does not favour one variant.
      for (let k = 0; k < KINDS.length; k++) {
        const kind = KINDS[(rep + k) % KINDS.length]!;
        ctx.log(`inference rep ${rep + 1}/${reps}: ${kind}`);
        const busy0 = await session.mainThreadTaskMs();
        const run = await session.call('inference', kind, frames);
        busyMs[kind].push((await session.mainThreadTaskMs()) - busy0);
        runs[kind].push(run);
      }
    }
    // Paired blocks (bench/README.md): the runtime and raw ORT in a worker alternate every
    // PAIR_BLOCK frames, ABBA, many short pairs per rep; the overhead is the median of the pair
    // differences, with a bootstrap interval. Then CPU time per frame of the renderer's threads,
    // in pairs of longer blocks.
    const pairedRuns: Array<{ runtimeMs: number[]; rawMs: number[] }> = [];
    for (let rep = 0; rep < pairedReps; rep++) {
      ctx.log(`inference rep ${rep + 1}/${pairedReps}: ${pairsPerRep} paired ${PAIR_BLOCK}-frame blocks`);
      pairedRuns.push(await session.call('inferencePaired', pairsPerRep, PAIR_BLOCK));
    }
    const pairDiffs = pairedRuns.flatMap((r) => r.runtimeMs.map((v, i) => v - r.rawMs[i]!));
    const pairedPerRep = pairedRuns.map((r) => median(r.runtimeMs.map((v, i) => v - r.rawMs[i]!)));
    const pairedOverhead = median(pairDiffs);
    const pairedCi = bootstrap(pairDiffs);
    const pairedIqMean = trimmedMean(pairDiffs);
    const pairedIqCi = bootstrap(pairDiffs, { statistic: trimmedMean, resamples: 500 });
    const pairedRaw = median(pairedRuns.flatMap((r) => r.rawMs));
    ctx.log(`inference: CPU time, ${cpuPairCount} pairs of ${cpuFrames}-frame blocks`);
    const cpu = await cpuPairs(session, cpuPairCount, cpuFrames);
    const cpuDiff = (key: 'mainMsPerFrame' | 'workerMsPerFrame' | 'cpuMsPerFrame') =>
      cpu.runtime.map((b, i) => b[key] - cpu.raw[i]![key]);
    const cpuRow = (key: 'mainMsPerFrame' | 'workerMsPerFrame' | 'cpuMsPerFrame') => {
      const d = cpuDiff(key);
      const ci = bootstrap(d);
      return { median: median(d), ci, raw: median(cpu.raw.map((b) => b[key])) };
    };
    const cpuMain = cpuRow('mainMsPerFrame');
    const cpuWorker = cpuRow('workerMsPerFrame');
    // The project's tfjs model, on tfjs's CPU backend (same for all three).
    const TFJS: InferenceKind[] = ['tfjs-runtime', 'tfjs-raw-worker', 'tfjs-raw-main'];
    const tfjsPrepared = await session.call('prepareTfjs', `inference-tone-${Date.now()}`, warmup);
    const tfjsRuns: Partial<Record<InferenceKind, InferenceRun[]>> = Object.fromEntries(
      TFJS.map((k) => [k, []]),
    );
    for (let rep = 0; rep < reps; rep++) {
      for (let k = 0; k < TFJS.length; k++) {
        const kind = TFJS[(rep + k) % TFJS.length]!;
        ctx.log(`inference rep ${rep + 1}/${reps}: ${kind}`);
        tfjsRuns[kind]!.push(await session.call('inference', kind, frames));
      }
    }
    await session.call('disposeInference');
    const tfjsMed = (kind: InferenceKind) => median(tfjsRuns[kind]!.flatMap((r) => r.blockMeanMs));
    const tfjsRt = tfjsMed('tfjs-runtime');
    const tfjsWorker = tfjsMed('tfjs-raw-worker');
    const tfjsOverhead = tfjsRt - tfjsWorker;

    // Per frame: the median over every 20-frame block of every run of the block's mean frame time
    // (performance.now() ticks in 100 µs without cross-origin isolation, too coarse for a single
    // 0.5 ms frame). Runs of the variants alternate in a rotating order, so load spikes on the
    // shared machine hit them all alike.
    const blocks = (kind: OrtKind) => runs[kind].flatMap((r) => r.blockMeanMs);
    const med = (kind: OrtKind) => median(blocks(kind));
    const perRep = (kind: OrtKind) => runs[kind].map((r) => median(r.blockMeanMs));
    const overheadMs = med('runtime') - med('raw-worker');
    const blocking = (kind: OrtKind, key: 'longTaskMs' | 'maxLagMs' | 'lagMs' | 'totalBlockingMs') =>
      median(runs[kind].map((r) => r.blocking[key]));
    const busyShareOf = (kind: OrtKind) => median(runs[kind].map((r, i) => busyMs[kind][i]! / r.totalMs));
    const rt = med('runtime');
    const worker = med('raw-worker');
    const main = med('raw-main');
    const probabilities = Object.fromEntries(KINDS.map((k) => [k, runs[k].at(-1)!.lastSpeechProbability]));
    const agree = Math.max(...Object.values(probabilities)) - Math.min(...Object.values(probabilities));

    const ratioWorker = rt / worker;
    // Judged on the paired estimate: separate runs minutes apart on a loaded machine differ by
    // more than the overhead itself (1.05x and 1.19x on two runs of the same code).
    // Issue 16 item 8: at most 0.05 ms per call (the older "or 5%" would pass a 1 ms model's 0.05 ms).
    // Met only with margin: the whole 95% interval of the median at or under 0.05 ms.
    const overheadGoal = pairedCi.high <= 0.05;
    const rtMaxLag = blocking('runtime', 'maxLagMs');
    const rtBusyShare = busyShareOf('runtime');
    return {
      name: 'inference',
      title: 'Inference overhead (Silero VAD v5, 512-sample frames, Chromium, WASM 1 thread)',
      browser: session.version,
      settings: {
        reps,
        framesPerRep: frames,
        warmupFrames: warmup,
        backend: prepared.backend,
        tfjsBackend: tfjsPrepared.backend,
      },
      rows: [
        compared('runtime.run, per frame', rt, 'ms', 'raw ORT in a worker', worker),
        compared('runtime.run, per frame', rt, 'ms', 'raw ORT on the main thread', main),
        compared('raw ORT in a worker, per frame', worker, 'ms', 'raw ORT on the main thread', main),
        plain('runtime overhead over raw ORT in a worker, per frame', overheadMs, 'ms'),
        compared(
          'raw ORT behind comlink in a worker, per frame',
          med('comlink-worker'),
          'ms',
          'raw ORT in a worker',
          worker,
          'attribution: the RPC layer the runtime uses, without the runtime',
        ),
        compared(
          'runtime.run, per frame',
          rt,
          'ms',
          'raw ORT behind comlink in a worker',
          med('comlink-worker'),
        ),
        compared(
          `runtime overhead over raw ORT in a worker, per frame, paired ${PAIR_BLOCK}-frame blocks (median of pair differences)`,
          pairedOverhead,
          'ms',
          'raw ORT in a worker, per frame, same blocks',
          pairedRaw,
          `95% bootstrap interval ${round(pairedCi.low, 4)}–${round(pairedCi.high, 4)} ms; pairs: ${pairDiffs.length}; p10–p90 of pair differences ${round(percentile(pairDiffs, 10), 3)}–${round(percentile(pairDiffs, 90), 3)} ms; per-rep medians ${pairedPerRep.map((v) => round(v, 3)).join(', ')} ms`,
        ),
        plain(
          'runtime overhead, paired blocks, interquartile mean of pair differences',
          pairedIqMean,
          'ms',
          `95% bootstrap interval ${round(pairedIqCi.low, 4)}–${round(pairedIqCi.high, 4)} ms (the median moves in steps of the 100 µs clock / ${PAIR_BLOCK}; this mean does not)`,
        ),
        compared(
          'runtime CPU overhead per frame, worker thread (paired blocks, /proc schedstat)',
          cpuWorker.median,
          'ms',
          'raw ORT worker thread CPU per frame',
          cpuWorker.raw,
          `95% bootstrap interval ${round(cpuWorker.ci.low, 4)}–${round(cpuWorker.ci.high, 4)} ms; ${cpuPairCount} pairs of ${cpuFrames}-frame blocks`,
        ),
        compared(
          'runtime CPU overhead per frame, page main thread (paired blocks, /proc schedstat)',
          cpuMain.median,
          'ms',
          'raw ORT in a worker: main thread CPU per frame',
          cpuMain.raw,
          `95% bootstrap interval ${round(cpuMain.ci.low, 4)}–${round(cpuMain.ci.high, 4)} ms`,
        ),
        plain(
          'runtime overhead over raw ORT in a worker, per frame, median of per-run differences',
          median(perRep('runtime').map((v, i) => v - perRep('raw-worker')[i]!)),
          'ms',
        ),
        compared(
          'main-thread busy time per frame: runtime',
          median(busyMs.runtime) / frames,
          'ms',
          'raw ORT on the main thread',
          median(busyMs['raw-main']) / frames,
          `Chromium TaskDuration (CDP); busy share of the run: runtime ${round(busyShareOf('runtime') * 100, 1)}%, raw ORT in a worker ${round(busyShareOf('raw-worker') * 100, 1)}%, main-thread ORT ${round(busyShareOf('raw-main') * 100, 1)}%`,
        ),
        plain(
          'main-thread busy time per frame: raw ORT in a worker',
          median(busyMs['raw-worker']) / frames,
          'ms',
        ),
        plain(
          'main-thread long tasks (>50 ms) per run: runtime',
          blocking('runtime', 'longTaskMs'),
          'ms',
          `main-thread ORT: ${round(blocking('raw-main', 'longTaskMs'), 1)} ms; it yields between runs, so its busy time shows in tasks under 50 ms`,
        ),
        compared(
          'main-thread max timer lag: runtime',
          rtMaxLag,
          'ms',
          'raw ORT on the main thread',
          blocking('raw-main', 'maxLagMs'),
          '4 ms setTimeout probe',
        ),
        plain('main-thread max timer lag: raw ORT in a worker', blocking('raw-worker', 'maxLagMs'), 'ms'),
        compared(
          'tfjs tone model: runtime.run, per frame',
          tfjsRt,
          'ms',
          'raw tfjs in a worker',
          tfjsWorker,
          'tfjs CPU backend, 1024 samples',
        ),
        compared(
          'tfjs tone model: runtime.run, per frame',
          tfjsRt,
          'ms',
          'raw tfjs on the main thread',
          tfjsMed('tfjs-raw-main'),
        ),
        plain('tfjs tone model: runtime overhead over raw tfjs in a worker, per frame', tfjsOverhead, 'ms'),
        plain(
          'speech probability spread across variants (last frame)',
          agree,
          'abs',
          'same inputs, same outputs',
        ),
      ],
      goals: [
        {
          goal: 'median overhead ≤ 0.05 ms per call over raw ORT in a worker (paired blocks)',
          met: overheadGoal,
          detail: `paired: +${round(pairedOverhead, 4)} ms per frame over ${round(pairedRaw, 3)} ms (95% interval ${round(pairedCi.low, 4)}–${round(pairedCi.high, 4)}, judged on its top; ${pairDiffs.length} pairs; interquartile mean ${round(pairedIqMean, 4)}); worker CPU +${round(cpuWorker.median, 4)} ms; separate runs: ${round(ratioWorker, 3)}x, +${round(overheadMs, 3)} ms`,
        },
        {
          goal: 'tfjs model: median overhead ≤ 5% or ≤ 0.05 ms over raw tfjs in a worker',
          met: tfjsRt / tfjsWorker <= 1.05 || tfjsOverhead <= 0.05,
          detail: `${round(tfjsRt / tfjsWorker, 3)}x, +${round(tfjsOverhead, 3)} ms per frame (tfjs CPU backend)`,
        },
        {
          // Blocking time as Lighthouse/Web Vitals define it (Total Blocking Time: the part of each
          // long task beyond 50 ms). The busy share and the timer lag are reported beside it; the
          // lag's maximum is dominated by scheduling on a loaded 2-core machine (raw ORT in a
          // worker, which does nothing on the main thread but messaging, shows it too).
          goal: 'main-thread blocking near zero',
          met: blocking('runtime', 'totalBlockingMs') === 0,
          detail: `runtime: total blocking time ${round(blocking('runtime', 'totalBlockingMs'), 1)} ms (no long task); main thread busy ${round(rtBusyShare * 100, 1)}% of the run (${round(median(busyMs.runtime) / frames, 3)} ms per frame, messaging) vs ${round(busyShareOf('raw-worker') * 100, 1)}% for raw ORT in a worker and ${round(busyShareOf('raw-main') * 100, 1)}% for ORT on the main thread; max 4 ms-timer lag ${round(rtMaxLag, 1)} ms (raw worker ${round(blocking('raw-worker', 'maxLagMs'), 1)} ms, main-thread ORT ${round(blocking('raw-main', 'maxLagMs'), 0)} ms)`,
        },
      ],
      notes: [
        'Frames run one after another, each awaited. Per-frame figures: the median, over all 20-frame blocks of all runs, of the block’s wall time / 20.',
        `Mean per frame over whole runs (median of runs): runtime ${round(median(runs.runtime.map((r) => r.totalMs / r.perFrameMs.length)), 3)} ms, raw worker ${round(median(runs['raw-worker'].map((r) => r.totalMs / r.perFrameMs.length)), 3)} ms, raw main ${round(median(runs['raw-main'].map((r) => r.totalMs / r.perFrameMs.length)), 3)} ms.`,
        `Median single-frame latency (100 µs timer resolution): runtime ${round(median(runs.runtime.flatMap((r) => r.perFrameMs)), 2)} ms, raw worker ${round(median(runs['raw-worker'].flatMap((r) => r.perFrameMs)), 2)} ms, raw main ${round(median(runs['raw-main'].flatMap((r) => r.perFrameMs)), 2)} ms.`,
      ],
      raw: {
        prepared,
        paired: pairedRuns,
        pairBlockFrames: PAIR_BLOCK,
        cpuPairs: cpu,
        perRunMedianBlockMs: Object.fromEntries(KINDS.map((k) => [k, perRep(k).map((v) => round(v, 4))])),
        blocking: Object.fromEntries(KINDS.map((k) => [k, runs[k].map((r) => r.blocking)])),
        mainThreadBusyMs: busyMs,
        probabilities,
        tfjsPerRunMedianBlockMs: Object.fromEntries(
          TFJS.map((k) => [k, tfjsRuns[k]!.map((r) => round(median(r.blockMeanMs), 4))]),
        ),
      },
    };
  } finally {
    await session.close();
    await models.server.stop();
  }
};
