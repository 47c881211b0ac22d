// The two paired measurements the inference overhead is judged on (bench/README.md, "Inference
// overhead"): wall time in many short interleaved blocks, timed in the page; and CPU time of the
// renderer's threads per block, read from /proc around blocks the runner starts one at a time.
import { abbaPairs } from '../pages/abba.ts';
import type { BrowserSession } from './browser/harness.ts';
import { threadCpuDeltaMs, threadCpuNs } from './proc.ts';

export interface CpuBlock {
  kind: 'runtime' | 'raw-worker';
  frames: number;
  wallMsPerFrame: number;
  /** CPU ms per frame of every thread of the renderer (page, workers, compositor, IO). */
  cpuMsPerFrame: number;
  /** Of which the page's main thread. */
  mainMsPerFrame: number;
  /** Of which the busiest dedicated worker thread: the variant's worker. */
  workerMsPerFrame: number;
}

/** `pairs` pairs of `frames`-frame blocks, runtime and raw ORT in a worker, ABBA order. */
export async function cpuPairs(session: BrowserSession, pairs: number, frames: number) {
  const pid = await session.rendererPid();
  const next = { runtime: 0, 'raw-worker': 0 };
  const block = async (kind: 'runtime' | 'raw-worker'): Promise<CpuBlock> => {
    const before = threadCpuNs(pid);
    const wallMsPerFrame = await session.call('inferenceBlock', kind, frames, next[kind]);
    const after = threadCpuNs(pid);
    next[kind] += frames;
    const threads = threadCpuDeltaMs(before, after);
    const sum = (list: typeof threads) => list.reduce((n, t) => n + t.ms, 0) / frames;
    const workers = threads.filter((t) => /worker/i.test(t.name)).sort((a, b) => b.ms - a.ms);
    return {
      kind,
      frames,
      wallMsPerFrame,
      cpuMsPerFrame: sum(threads),
      mainMsPerFrame: sum(threads.filter((t) => t.tid === pid)),
      workerMsPerFrame: (workers[0]?.ms ?? 0) / frames,
    };
  };
  const [runtime, raw] = await abbaPairs(pairs, 'runtime', 'raw-worker', block);
  return { pid, runtime, raw };
}

/** The thread names of the renderer and their CPU ms so far (what cpuPairs sums over). */
export function rendererThreads(pid: number) {
  return [...threadCpuNs(pid)].map(([tid, t]) => ({ tid, name: t.name, ms: t.ns / 1e6 }));
}
