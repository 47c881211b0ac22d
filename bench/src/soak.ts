// 6. Soak: one real server process (update-server/bin/edgeship-server.mjs, SQLite, temp data dir)
// under steady manifest checks, chunk fetches and telemetry; RSS (from /proc) and p99 sampled
// every 10 s. Reports growth from the second minute to the last, and every error.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SILERO_CONTRACT, sileroBytes } from '../../test/support/models.ts';
import { publish, startTestServer } from '../../test/support/server.ts';
import { BENCH_SPAWN, spawnServer } from '../../test/support/server-process.ts';
import { cpuSeconds, rssMiB } from './proc.ts';
import type { Benchmark, Row } from './result.ts';
import { compared, plain } from './rows.ts';
import { growth, median, percentile, round } from './stats.ts';
import { hasTelemetryIngest, telemetryRequest } from './telemetry-batch.ts';

const SAMPLE_MS = 10_000;
const TICK_MS = 100;

interface Sample {
  atSec: number;
  rssMiB: number;
  cpuSec: number;
  requests: number;
  p99Ms: number;
  manifestP99Ms: number;
  errors: number;
}

export const soak: Benchmark = async (ctx) => {
  const seconds = ctx.soakSeconds ?? (ctx.quick ? 60 : 600);
  const dataDir = await mkdtemp(join(tmpdir(), 'edgeship-soak-'));
  // Publish through an in-process server, then hand the data directory to the real binary.
  const setup = await startTestServer({ dataDir });
  const signed = await publish(setup, await sileroBytes(), {
    model: 'vad',
    version: '1.0.0',
    ...SILERO_CONTRACT,
  });
  await setup.operator.promoteRelease('demo-app', 'stable', 'vad', '1.0.0');
  await setup.stop({ keepData: true });
  const server = await spawnServer(
    ['--data-dir', dataDir, '--port', '0', '--log-level', 'warn'],
    BENCH_SPAWN,
  );
  const pid = server.child.pid!;
  const base = server.url;
  const manifestUrl = `${base}/v1/apps/demo-app/channels/stable/manifest`;
  const chunks = signed.signed.files[0]!.chunks;
  const errors = new Map<string, number>();
  const samples: Sample[] = [];
  try {
    const telemetry = (await hasTelemetryIngest(base)).ok;
    const etag = (await fetch(manifestUrl)).headers.get('etag')!;
    // Per 100 ms tick: 4 manifest checks (3 conditional), 1 chunk, 1 telemetry batch when the
    // endpoint exists: 50-60 req/s, under the default public rate limit (6,000/min per address).
    let window: { all: number[]; manifest: number[]; errors: number; requests: number } = {
      all: [],
      manifest: [],
      errors: 0,
      requests: 0,
    };
    let tick = 0;
    const inFlight = new Set<Promise<void>>();
    const request = (kind: string, url: string, init: RequestInit = {}, expect = [200]) => {
      const t0 = performance.now();
      const w = window;
      const p = fetch(url, init)
        .then(async (response) => {
          await response.arrayBuffer();
          const ms = performance.now() - t0;
          w.all.push(ms);
          if (kind.startsWith('manifest')) w.manifest.push(ms);
          w.requests += 1;
          if (!expect.includes(response.status)) {
            const key = `${kind}: HTTP ${response.status}`;
            errors.set(key, (errors.get(key) ?? 0) + 1);
            w.errors += 1;
          }
        })
        .catch((error: Error) => {
          const key = `${kind}: ${error.message}`;
          errors.set(key, (errors.get(key) ?? 0) + 1);
          w.errors += 1;
        })
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    };
    const started = performance.now();
    let nextSample = SAMPLE_MS;
    let cpu0 = cpuSeconds(pid);
    ctx.log(`soak for ${seconds} s against ${base} (pid ${pid}), telemetry ${telemetry ? 'on' : 'pending'}`);
    while (performance.now() - started < seconds * 1000) {
      for (let i = 0; i < 4; i++) {
        const conditional = i > 0;
        request(
          conditional ? 'manifest 304' : 'manifest 200',
          manifestUrl,
          conditional ? { headers: { 'if-none-match': etag } } : {},
          conditional ? [304] : [200],
        );
      }
      const chunk = chunks[tick % chunks.length]!;
      request('chunk', `${base}/v1/chunks/${chunk.sha256}`);
      if (telemetry) {
        request(
          'telemetry',
          `${base}/v1/telemetry`,
          { method: 'POST', ...telemetryRequest(tick % 5000) },
          [200, 201, 202, 204],
        );
      }
      tick += 1;
      const elapsed = performance.now() - started;
      if (elapsed >= nextSample) {
        const cpu = cpuSeconds(pid);
        samples.push({
          atSec: round(elapsed / 1000, 1),
          rssMiB: round(rssMiB(pid), 1),
          cpuSec: round(cpu - cpu0, 2),
          requests: window.requests,
          p99Ms: round(percentile(window.all, 99), 2),
          manifestP99Ms: round(percentile(window.manifest, 99), 2),
          errors: window.errors,
        });
        cpu0 = cpu;
        ctx.log(
          `t=${Math.round(elapsed / 1000)} s rss ${samples.at(-1)!.rssMiB} MiB p99 ${samples.at(-1)!.p99Ms} ms`,
        );
        window = { all: [], manifest: [], errors: 0, requests: 0 };
        nextSample += SAMPLE_MS;
      }
      const wait = started + tick * TICK_MS - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    await Promise.all(inFlight);
    // "From the second minute to the last": minute 2 against the last minute; a run shorter
    // than 3 minutes compares its second third with its last third instead.
    const span = seconds >= 180 ? 60 : seconds / 3;
    const early = samples.filter((s) => s.atSec > span && s.atSec <= 2 * span + 0.5);
    const late = samples.filter((s) => s.atSec > seconds - span);
    const m = (xs: Sample[], key: 'rssMiB' | 'p99Ms' | 'cpuSec') => median(xs.map((s) => s[key]));
    const rssGrowth = growth(m(early, 'rssMiB'), m(late, 'rssMiB'));
    const p99Growth = growth(m(early, 'p99Ms'), m(late, 'p99Ms'));
    const totalErrors = [...errors.values()].reduce((a, b) => a + b, 0);
    const totalRequests = samples.reduce((n, s) => n + s.requests, 0);
    const rows: Row[] = [
      compared(
        `server RSS, last ${span} s`,
        m(late, 'rssMiB'),
        'MiB',
        `${span}–${2 * span} s`,
        m(early, 'rssMiB'),
      ),
      compared(
        `p99 latency (all requests), last ${span} s`,
        m(late, 'p99Ms'),
        'ms',
        `${span}–${2 * span} s`,
        m(early, 'p99Ms'),
      ),
      plain('requests', totalRequests, 'req', `${round(totalRequests / seconds, 1)} req/s`),
      plain('errors', totalErrors, 'req'),
      compared(
        `server CPU per 10 s, last ${span} s`,
        m(late, 'cpuSec'),
        'CPU s',
        `${span}–${2 * span} s`,
        m(early, 'cpuSec'),
      ),
    ];
    const flat = Math.abs(rssGrowth) < 0.1;
    return {
      name: 'soak',
      title: `Soak: ${seconds / 60} minutes of steady traffic against one server process (SQLite)`,
      settings: {
        seconds,
        sampleEverySec: SAMPLE_MS / 1000,
        telemetry: telemetry ? 'on' : 'pending (no endpoint)',
        reqPerTick: telemetry ? 6 : 5,
        tickMs: TICK_MS,
      },
      rows,
      goals: [
        {
          goal: 'RSS flat from the second minute to the last (growth under 10%)',
          met: flat,
          detail: `${round(rssGrowth * 100, 1)}% (${m(early, 'rssMiB')} → ${m(late, 'rssMiB')} MiB)`,
        },
        {
          goal: 'p99 latency flat from the second minute to the last (growth under 10%)',
          met: Math.abs(p99Growth) < 0.1,
          detail: `${round(p99Growth * 100, 1)}% (${m(early, 'p99Ms')} → ${m(late, 'p99Ms')} ms, client-side, all requests); server CPU per 10 s ${m(early, 'cpuSec')} → ${m(late, 'cpuSec')} s`,
        },
        {
          goal: 'no errors',
          met: totalErrors === 0,
          detail: totalErrors ? JSON.stringify(Object.fromEntries(errors)) : '0 errors',
        },
      ],
      notes: [
        ...(telemetry
          ? []
          : [
              'Telemetry traffic: pending (POST /v1/telemetry does not exist yet); manifest checks and chunks only.',
            ]),
        ...(seconds < 600
          ? [`Ran ${seconds / 60} minutes, not the issue’s ten (time budget of this run).`]
          : []),
      ],
      raw: { samples, errors: Object.fromEntries(errors) },
    };
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
};
