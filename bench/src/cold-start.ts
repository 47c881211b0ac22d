// 2. Cold start: a new runtime on a store that already holds the model (IndexedDB → verify →
// session → first result) versus a new raw ORT worker given the bytes from memory (the floor)
// and one that fetches them over HTTP first.
import { openBenchPage, startModelServer } from './browser/harness.ts';
import type { Benchmark } from './result.ts';
import { compared, plain } from './rows.ts';
import { median, round } from './stats.ts';

export const coldStart: Benchmark = async (ctx) => {
  const reps = ctx.quick ? 3 : 9;
  const models = await startModelServer();
  const session = await openBenchPage(models);
  try {
    const prefix = `cold-${Date.now()}`;
    const active = await session.call('primeStore', prefix);
    // One untimed round of each, so the browser's compiled-WASM cache is warm for all three alike.
    await session.call('coldRuntime', prefix);
    await session.call('coldRaw', 'memory');
    await session.call('coldRaw', 'http');
    const runtime: Awaited<ReturnType<typeof session.call<'coldRuntime'>>>[] = [];
    const memory: Array<{ totalMs: number; loadMs: number; firstRunMs: number }> = [];
    const http: Array<{ totalMs: number; loadMs: number; firstRunMs: number }> = [];
    for (let rep = 0; rep < reps; rep++) {
      ctx.log(`cold start rep ${rep + 1}/${reps}`);
      const order = [0, 1, 2].map((k) => (rep + k) % 3);
      for (const k of order) {
        if (k === 0) runtime.push(await session.call('coldRuntime', prefix));
        else if (k === 1) memory.push(await session.call('coldRaw', 'memory'));
        else http.push(await session.call('coldRaw', 'http'));
      }
    }
    const rt = median(runtime.map((r) => r.totalMs));
    const floor = median(memory.map((r) => r.totalMs));
    const overHttp = median(http.map((r) => r.totalMs));
    const ratio = rt / floor;
    return {
      name: 'cold-start',
      title: 'Cold start: load() to first result with the model in IndexedDB (Chromium, WASM 1 thread)',
      browser: session.version,
      settings: { reps, model: 'silero_vad_v5.onnx (2.3 MB)', active, backend: runtime[0]?.backend },
      rows: [
        compared(
          'runtime: createRuntime + load + first run',
          rt,
          'ms',
          'raw ORT worker, bytes in memory (floor)',
          floor,
        ),
        compared(
          'raw ORT worker, fetch over HTTP + session + run',
          overHttp,
          'ms',
          'raw ORT worker, bytes in memory (floor)',
          floor,
        ),
        compared(
          'runtime: createRuntime + load + first run',
          rt,
          'ms',
          'raw ORT worker, fetch over HTTP',
          overHttp,
        ),
        plain('runtime: createRuntime (worker start, init)', median(runtime.map((r) => r.createMs)), 'ms'),
        plain('runtime: load (IndexedDB, verify, session)', median(runtime.map((r) => r.loadMs)), 'ms'),
        plain('runtime: first run', median(runtime.map((r) => r.firstRunMs)), 'ms'),
        plain('floor: worker start + session', median(memory.map((r) => r.loadMs)), 'ms'),
        plain('floor: first run', median(memory.map((r) => r.firstRunMs)), 'ms'),
      ],
      goals: [
        {
          goal: 'cold start from the IndexedDB store ≤ 1.15x the floor (session from bytes in memory)',
          met: ratio <= 1.15,
          detail: `${round(ratio, 3)}x (${round(rt, 1)} ms vs ${round(floor, 1)} ms)`,
        },
      ],
      notes: [
        'Each variant starts a new dedicated worker (the runtime’s own, or a raw ORT one) on an already open page; the built pages (vite build) are served from loopback, so module and WASM fetches hit the HTTP cache as on a second page load.',
        'The runtime verifies the release’s file hash before creating the session; the floor does not.',
      ],
      raw: { runtime, memory, http },
    };
  } finally {
    await session.close();
    await models.server.stop();
  }
};
