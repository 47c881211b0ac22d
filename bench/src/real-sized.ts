// Real-sized models (issue 16): models generated at bench time (two MatMuls, weights in ONNX
// external data) at the sizes given (`--sizes 2,200,500`, MB), published to a real update
// server and loaded in Chromium. Per size, in a rotating order, each phase in a fresh page:
// the runtime's first load against a plain fetch of the same chunks + a raw ORT session, a cold
// start against a raw ORT session from bytes in memory, downloadRelease against the plain fetch,
// with the browser's RSS (all its processes) above the fresh page's baseline. Then one model
// (`--reload-mb`, default 1024) downloads, the page reloads at half way, and it resumes and runs.
import { readdirSync, readFileSync } from 'node:fs';
import { signRelease } from '@edgeship/protocol';
import type { BrowserContext, Page } from 'playwright-core';
import { bigModelContract, bigOnnxModel } from '../../test/support/big-model.ts';
import { testRelease } from '../../test/support/trust.ts';
import type { BigSetup } from '../pages/big-bench.ts';
import type { BenchPage } from '../pages/main.ts';
import { type BrowserSession, openBenchPage, startModelServer } from './browser/harness.ts';
import type { Benchmark, Goal, Row } from './result.ts';
import { compared, plain } from './rows.ts';
import { median, percentile, round } from './stats.ts';

type Phase = 'runtime-first' | 'raw-fetch' | 'runtime-cold' | 'raw-memory' | 'download' | 'plain-fetch';
const PHASES: Phase[] = [
  'runtime-first',
  'raw-fetch',
  'runtime-cold',
  'raw-memory',
  'download',
  'plain-fetch',
];

/** Width of the square first weight for a model of about `mb` MB (4·width² bytes). */
const widthFor = (mb: number) => Math.max(16, Math.round(Math.sqrt((mb * 1e6) / 4)));

/** Sum of VmRSS (MiB) over this process's descendants: the browser and all its children. */
function browserRssMiB(): number {
  const parent = new Map<number, number>();
  const rss = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      parent.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (match) rss.set(pid, Number(match[1]) / 1024);
    } catch {
      // Gone between the listing and the read.
    }
  }
  const mine = (pid: number): boolean => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p))
      if (p === process.pid) return true;
    return false;
  };
  let total = 0;
  for (const [pid, mib] of rss) if (mine(pid)) total += mib;
  return total;
}

/** Samples browserRssMiB every 100 ms until stopped; resolves with the peak. */
function watchPeak(): () => number {
  let peak = browserRssMiB();
  const timer = setInterval(() => {
    peak = Math.max(peak, browserRssMiB());
  }, 100);
  return () => {
    clearInterval(timer);
    return Math.max(peak, browserRssMiB());
  };
}

/** A new page (its own renderer) in `context`, which keeps one profile's storage for every page. */
async function freshPage(session: BrowserSession, context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => process.stderr.write(`[page error] ${error.message}\n`));
  if (process.env.BENCH_CONSOLE) {
    page.on('console', (m) => process.stderr.write(`[page] ${m.text()}\n`));
    page.on('worker', (w) =>
      w.on('console', (m) => process.stderr.write(`[worker ${w.url().slice(-30)}] ${m.text()}\n`)),
    );
  }
  await page.goto(session.page.url());
  await page.waitForFunction(() => (globalThis as unknown as { benchReady?: boolean }).benchReady === true);
  return page;
}

function callOn<K extends keyof BenchPage>(
  page: Page,
  name: K,
  ...args: Parameters<BenchPage[K]>
): Promise<Awaited<ReturnType<BenchPage[K]>>> {
  return page.evaluate(
    ([n, a]) => {
      const b = (globalThis as unknown as { bench: Record<string, (...x: unknown[]) => unknown> }).bench;
      // A minified class name is all Playwright would print: say the code and message.
      return Promise.resolve(b[n as string]!(...(a as unknown[]))).catch(
        (e: { code?: string; message?: string }) => {
          throw new Error(`${n as string}: ${e?.code ?? ''} ${e?.message ?? String(e)}`);
        },
      );
    },
    [name, args] as const,
  ) as never;
}

/** Deletes every store (IndexedDB database and OPFS packs) whose name starts with `prefix`. */
async function dropDatabases(page: Page, prefix: string) {
  await callOn(page, 'bigDropStores', prefix);
}

const spread = (xs: number[], unit: string) =>
  `p10–p90 ${round(percentile(xs, 10), 0)}–${round(percentile(xs, 90), 0)} ${unit}, n=${xs.length}`;

export const realSized: Benchmark = async (ctx) => {
  const sizes = ctx.sizes ?? (ctx.quick ? [2, 50] : [2, 200, 500]);
  const reloadMb = ctx.reloadMb ?? (ctx.quick ? 100 : 1024);
  const reps = ctx.reps ?? (ctx.quick ? 3 : 5);
  const models = await startModelServer();
  const session = await openBenchPage(models);
  const context = await session.browser.newContext();
  const server = models.server;
  const publish = async (mb: number) => {
    const width = widthFor(mb);
    const files = bigOnnxModel({ width, external: true });
    const model = `big${mb}`;
    const release = await testRelease(Object.fromEntries(files), {
      model,
      version: '1.0.0',
      ...bigModelContract(width),
    });
    const signed = await signRelease(release, [server.publisherKey]);
    await server.publisher.uploadRelease(signed, files);
    await server.publisher.registerRelease({ release: signed });
    await server.operator.promoteRelease('demo-app', 'stable', model, '1.0.0');
    const setup: BigSetup = {
      server: server.server.url,
      trustedRoot: server.server.trustedRoot,
      model,
      width,
    };
    return { signed, setup, bytes: release.files.reduce((n, f) => n + f.size, 0) };
  };

  const rows: Row[] = [];
  const goals: Goal[] = [];
  const raw: Record<string, unknown> = {};
  try {
    for (const mb of sizes) {
      ctx.log(`${mb} MB: generating and publishing`);
      const { signed, setup, bytes } = await publish(mb);
      const chunkUrls = signed.signed.files.flatMap((f) =>
        f.chunks.map((c) => `${server.server.url}/v1/chunks/${c.sha256}`),
      );
      const primed = `big-primed-${mb}-${Date.now()}`;
      {
        const page = await freshPage(session, context);
        await callOn(page, 'bigRuntimeLoad', setup, primed); // untimed: the cold-start store
        await page.close();
      }
      const ms: Record<Phase, number[]> = Object.fromEntries(PHASES.map((p) => [p, []])) as never;
      const memory: Record<Phase, number[]> = Object.fromEntries(PHASES.map((p) => [p, []])) as never;
      const rawFetchMs: number[] = [];
      // The cold start's spans, from the runtime's engine-starting events (bench/pages/runtime-start.ts).
      const coldReadMs: number[] = [];
      const coldEngineMs: number[] = [];
      for (let rep = 0; rep < reps; rep++) {
        for (let k = 0; k < PHASES.length; k++) {
          const phase = PHASES[(rep + k) % PHASES.length]!;
          const page = await freshPage(session, context);
          await new Promise((r) => setTimeout(r, 500)); // let the new page settle before its baseline
          const baseline = browserRssMiB();
          const stop = watchPeak();
          const prefix = `big-${mb}-${rep}-${Date.now()}`;
          let took: number;
          if (phase === 'runtime-first') took = (await callOn(page, 'bigRuntimeLoad', setup, prefix)).totalMs;
          else if (phase === 'runtime-cold') {
            const cold = await callOn(page, 'bigRuntimeLoad', setup, primed);
            took = cold.totalMs;
            if (cold.readMs !== null) coldReadMs.push(cold.readMs);
            if (cold.engineMs !== null) coldEngineMs.push(cold.engineMs);
          } else if (phase === 'raw-fetch') {
            const r = await callOn(page, 'bigRaw', setup, signed, server.server.url, 'fetch');
            took = r.totalMs;
            rawFetchMs.push(r.fetchMs);
          } else if (phase === 'raw-memory')
            took = (await callOn(page, 'bigRaw', setup, signed, server.server.url, 'memory')).totalMs;
          else if (phase === 'download')
            took = (await callOn(page, 'bigDownload', signed, setup.server, prefix)).ms;
          else took = (await callOn(page, 'plainFetch', chunkUrls, 4)).ms;
          const peak = stop();
          ms[phase].push(took);
          memory[phase].push(peak - baseline);
          ctx.log(
            `${mb} MB rep ${rep + 1}/${reps} ${phase}: ${round(took, 0)} ms, +${round(peak - baseline, 0)} MiB`,
          );
          await dropDatabases(page, prefix);
          await page.close();
        }
      }
      {
        const page = await freshPage(session, context);
        await dropDatabases(page, primed);
        await page.close();
      }
      const m = (p: Phase) => median(ms[p]);
      const mem = (p: Phase) => median(memory[p]);
      // The raw "memory" phase's RSS includes the untimed page-side fetch of the bytes it hands over.
      const firstFloor = m('raw-fetch');
      const label = `${mb} MB (${round(bytes / 1e6, 1)} MB in ${chunkUrls.length} chunks)`;
      // A phase's median time or peak memory against its baseline's, with the phase's spread.
      const timed = (what: string, phase: Phase, baselineLabel: string, baseline: number) =>
        compared(`${label}: ${what}`, m(phase), 'ms', baselineLabel, baseline, spread(ms[phase], 'ms'));
      const peakRss = (what: string, phase: Phase, baselineLabel: string, baseline: Phase) =>
        compared(
          `${label}: peak browser RSS above baseline, ${what}`,
          mem(phase),
          'MiB',
          baselineLabel,
          mem(baseline),
          spread(memory[phase], 'MiB'),
        );
      rows.push(
        timed(
          'first load (download, verify, store, session, first run)',
          'runtime-first',
          'plain fetch of the chunks + raw ORT session + first run',
          firstFloor,
        ),
        timed(
          'cold start from the store',
          'runtime-cold',
          'raw ORT session from bytes in memory + first run',
          m('raw-memory'),
        ),
        timed(
          'downloadRelease (fetch, verify, store)',
          'download',
          'plain fetch of the same chunks',
          m('plain-fetch'),
        ),
        peakRss('first load', 'runtime-first', 'raw ORT: plain fetch + session', 'raw-fetch'),
        peakRss('cold start', 'runtime-cold', 'raw ORT: session from bytes in memory', 'raw-memory'),
        plain(
          `${label}: raw fetch + session + run, of which the plain fetch in the worker`,
          median(rawFetchMs),
          'ms',
        ),
        plain(
          `${label}: cold start, of which reading the store and checking every chunk (ORT starts meanwhile)`,
          median(coldReadMs),
          'ms',
          spread(coldReadMs, 'ms'),
        ),
        plain(
          `${label}: cold start, of which the engine from then on (session, health check, pointers)`,
          median(coldEngineMs),
          'ms',
          spread(coldEngineMs, 'ms'),
        ),
      );
      const ratioOf = (a: number, b: number) => round(a / b, 3);
      goals.push(
        {
          goal: `${mb} MB: first load ≤ 1.25x (plain fetch + raw ORT session)`,
          met: m('runtime-first') / firstFloor <= 1.25,
          detail: `${ratioOf(m('runtime-first'), firstFloor)}x (${round(m('runtime-first'), 0)} vs ${round(firstFloor, 0)} ms)`,
        },
        {
          goal: `${mb} MB: cold start ≤ 1.15x raw ORT session from bytes in memory`,
          met: m('runtime-cold') / m('raw-memory') <= 1.15,
          detail: `${ratioOf(m('runtime-cold'), m('raw-memory'))}x (${round(m('runtime-cold'), 0)} vs ${round(m('raw-memory'), 0)} ms)`,
        },
        {
          goal: `${mb} MB: download + verify + store ≤ 1.2x a plain fetch`,
          met: m('download') / m('plain-fetch') <= 1.2,
          detail: `${ratioOf(m('download'), m('plain-fetch'))}x (${round(m('download'), 0)} vs ${round(m('plain-fetch'), 0)} ms)`,
        },
        {
          goal: `${mb} MB: peak browser memory during first load ≤ 1.05x raw ORT's`,
          met: mem('runtime-first') / mem('raw-fetch') <= 1.05,
          detail: `${ratioOf(mem('runtime-first'), mem('raw-fetch'))}x (+${round(mem('runtime-first'), 0)} vs +${round(mem('raw-fetch'), 0)} MiB)`,
        },
      );
      raw[`${mb}MB`] = { ms, memory, rawFetchMs, bytes, chunks: chunkUrls.length };
      ctx.log(`${mb} MB done`);
    }

    if (reloadMb > 0) {
      ctx.log(`${reloadMb} MB: generating and publishing (reload row)`);
      const { setup, bytes } = await publish(reloadMb);
      const prefix = `big-reload-${Date.now()}`;
      const page = await freshPage(session, context);
      const t0 = performance.now();
      await callOn(page, 'bigStartLoad', setup, prefix);
      let stored = 0;
      while (stored < bytes / 2) {
        await new Promise((r) => setTimeout(r, 500));
        stored = await callOn(page, 'bigStoredBytes', prefix);
        const failed = await page.evaluate(
          () => (globalThis as unknown as { bigLoadError?: string }).bigLoadError,
        );
        if (failed) throw new Error(`the ${reloadMb} MB load failed before half way: ${failed}`);
      }
      const firstHalfMs = performance.now() - t0;
      ctx.log(`${reloadMb} MB: ${round(stored / 1e6, 0)} MB stored, reloading the page`);
      await page.reload();
      await page.waitForFunction(
        () => (globalThis as unknown as { benchReady?: boolean }).benchReady === true,
      );
      const keptAfterReload = await callOn(page, 'bigStoredBytes', prefix);
      const t1 = performance.now();
      const resumed = await callOn(page, 'bigRuntimeLoad', setup, prefix);
      const secondHalfMs = performance.now() - t1;
      const finalStored = await callOn(page, 'bigStoredBytes', prefix);
      await dropDatabases(page, prefix);
      await page.close();
      const ran = Number.isFinite(resumed.output);
      rows.push(
        plain(
          `${reloadMb} MB: stored when the page reloaded`,
          keptAfterReload / 1e6,
          'MB',
          `of ${round(bytes / 1e6, 1)} MB; ${round(firstHalfMs, 0)} ms to get there`,
        ),
        plain(
          `${reloadMb} MB: after the reload, load (resume, verify, store, session) + first run`,
          secondHalfMs,
          'ms',
          `first output ${resumed.output}`,
        ),
      );
      goals.push({
        goal: `a ${reloadMb} MB model downloads, survives a reload at half way, and runs`,
        met: ran && keptAfterReload >= bytes / 2 - 2 * 1024 * 1024 && finalStored >= bytes - 1,
        detail: `${round(keptAfterReload / 1e6, 0)} MB kept across the reload, ${round(finalStored / 1e6, 0)} of ${round(bytes / 1e6, 0)} MB stored at the end, ran: ${ran}`,
      });
      raw.reload = { bytes, keptAfterReload, finalStored, firstHalfMs, secondHalfMs, resumed };
    }
    return {
      // Runs at other sizes than the default keep their own results file beside the default's.
      name:
        ctx.sizes || ctx.reloadMb !== undefined
          ? `real-sized-${sizes.join('-')}-reload${reloadMb}`
          : 'real-sized',
      title: `Real-sized models: ${sizes.join(', ')} MB${reloadMb ? ` and a ${reloadMb} MB reload` : ''} (Chromium, WASM 1 thread, loopback)`,
      browser: session.version,
      settings: {
        reps,
        sizes,
        reloadMb,
        model: 'bigOnnxModel: two MatMuls, weights in ONNX external data',
        backend: 'wasm',
      },
      rows,
      goals,
      notes: [
        'Each phase runs in a fresh page (same browser profile, so the cold start finds the primed store); phases rotate per rep.',
        'Memory: the sum of VmRSS over every browser process, sampled every 100 ms, peak minus the fresh page’s baseline.',
        'The raw from-memory phase fetches its bytes (untimed) in the page before the clock starts; its RSS includes them.',
      ],
      raw,
    };
  } finally {
    await session.close();
    await models.server.stop();
  }
};
