// 4. Update server under load (autocannon on loopback, server in its own process): manifest
// checks answered 200 and 304 against a bare Hono route returning the same bytes from memory,
// chunk serving against a plain node:http static file server (fs.createReadStream) and the bare
// route, telemetry ingest on SQLite and PostgreSQL against parse + schema check alone. Every
// repetition runs each target once, in rotating order, so all see the same machine load.
import { rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { SOURCE_NODE_ARGS } from '../../test/support/node-args.ts';
import {
  BENCH_SPAWN,
  type ListeningLine,
  type ServerProcess,
  spawnServer,
} from '../../test/support/server-process.ts';
import { cpuSeconds } from './proc.ts';
import type { Benchmark, Goal, Row } from './result.ts';
import { compared, plain } from './rows.ts';
import { median } from './stats.ts';
import { hasTelemetryIngest, presignedRequests, telemetryRequest } from './telemetry-batch.ts';

const here = dirname(fileURLToPath(import.meta.url));
/** Concurrent telemetry senders (autocannon connections) on every ingest target. */
const INGEST_CONNECTIONS = 64;
/** Installs the bench batches come from (each its own Ed25519 key), and batches signed per run. */
const DEVICES = 10_000;
const POOL_PER_RUN = 45_000;
const PG_ADMIN = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

interface EdgeshipInfo extends ListeningLine {
  pid: number;
  manifestPath: string;
  etag: string;
  manifestBase64: string;
  chunks: Array<{ sha256: string; size: number }>;
}

interface Load {
  reqPerSec: number;
  p99Ms: number;
  bytesPerSec: number;
  non2xx: number;
  errors: number;
  /** Server CPU seconds per 1,000 requests. */
  cpuPer1k: number;
  /** CPU the load generator (this process, autocannon) used, as a share of one core's time. */
  clientCores: number;
}

async function cannon(
  target: { url: string; pid: number },
  opts: Omit<autocannon.Options, 'url'> & { path: string },
): Promise<Load> {
  const cpu0 = cpuSeconds(target.pid);
  const client0 = process.cpuUsage();
  const wall0 = performance.now();
  const { path, ...rest } = opts;
  const result = await autocannon({ url: `${target.url}${path}`, connections: 10, ...rest });
  const cpu = cpuSeconds(target.pid) - cpu0;
  const client = process.cpuUsage(client0);
  const clientCores = (client.user + client.system) / 1000 / (performance.now() - wall0);
  const statusOk = (result['2xx'] ?? 0) + (result['3xx'] ?? 0);
  return {
    reqPerSec: result.requests.average,
    p99Ms: result.latency.p99,
    bytesPerSec: result.throughput.average,
    non2xx: result.non2xx - (result['3xx'] ?? 0),
    errors: result.errors + result.timeouts,
    cpuPer1k: statusOk ? (cpu / statusOk) * 1000 : Number.NaN,
    clientCores,
  };
}

function startEdgeship(databaseUrl?: string) {
  return spawnServer<EdgeshipInfo>([], {
    ...BENCH_SPAWN,
    script: join(here, 'servers/edgeship-child.ts'),
    nodeArgs: SOURCE_NODE_ARGS,
    env: databaseUrl ? { BENCH_DATABASE_URL: databaseUrl } : {},
  });
}

type Target = ListeningLine & { pid: number };
type Scenario = Record<string, Omit<autocannon.Options, 'url'> & { path: string; target: Target }>;

const spread = (xs: number[], digits = 0) =>
  `median of ${xs.length}, range ${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;

/** Runs every target once per repetition, rotating who goes first. */
async function interleaved(
  ctx: { log: (m: string) => void },
  name: string,
  scenario: Scenario,
  reps: number,
  duration: number,
  /** Runs before each target's run, untimed (the telemetry pools are made here). */
  before?: (who: string) => void,
): Promise<Record<string, Load[]>> {
  const names = Object.keys(scenario);
  const runs: Record<string, Load[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let rep = 0; rep < reps; rep++) {
    ctx.log(`${name}: rep ${rep + 1}/${reps}`);
    const order = names.map((_, i) => names[(i + rep) % names.length]!);
    for (const who of order) {
      const { target, ...opts } = scenario[who]!;
      before?.(who);
      runs[who]!.push(await cannon(target, { ...opts, duration }));
    }
  }
  return runs;
}

/** Met only with a margin: the median ratio at least 5% past the target, on this noisy host. */
function ratioGoal(goal: string, value: number, target: number): Goal {
  return {
    goal,
    met: value >= target * 1.05,
    detail: `${value.toFixed(3)}x (goal ≥ ${target}x, met from ${(target * 1.05).toFixed(2)}x)`,
  };
}

export const updateServer: Benchmark = async (ctx) => {
  const part = (name: string) => !ctx.parts || ctx.parts.includes(name);
  const reps = ctx.quick ? 1 : 5;
  const duration = ctx.quick ? 3 : 6;
  const load0 = loadavg();
  const edgeship = await startEdgeship();
  const children: ServerProcess<Target>[] = [edgeship];
  const rows: Row[] = [];
  const goals: Goal[] = [];
  const notes: string[] = [];
  const raw: Record<string, unknown> = {};
  const specFile = join(tmpdir(), `edgeship-bench-bare-${process.pid}.json`);
  const chunkFile = join(tmpdir(), `edgeship-bench-chunk-${process.pid}.bin`);
  try {
    const { info } = edgeship;
    const biggest = [...info.chunks].sort((a, b) => b.size - a.size)[0]!;
    const chunkBytes = new Uint8Array(
      await (await fetch(`${info.url}/v1/chunks/${biggest.sha256}`)).arrayBuffer(),
    );
    await writeFile(chunkFile, chunkBytes);
    await writeFile(
      specFile,
      JSON.stringify({
        etag: info.etag,
        manifestBase64: info.manifestBase64,
        chunkBase64: Buffer.from(chunkBytes).toString('base64'),
      }),
    );
    const bare = await spawnServer<Target>([specFile], {
      ...BENCH_SPAWN,
      script: join(here, 'servers/bare-hono-child.ts'),
      nodeArgs: SOURCE_NODE_ARGS,
    });
    children.push(bare);
    const fileServer = await spawnServer<Target>([chunkFile], {
      ...BENCH_SPAWN,
      script: join(here, 'servers/static-file-child.ts'),
      nodeArgs: SOURCE_NODE_ARGS,
    });
    children.push(fileServer);

    const chunkName = `chunk GET (${Math.round(biggest.size / 1024)} KiB)`;
    const scenarios: Record<string, Scenario> = {
      ...(part('manifest') && {
        'manifest 200': {
          edgeship: { target: info, path: info.manifestPath },
          bare: { target: bare.info, path: '/manifest' },
        },
        'manifest 304 (If-None-Match)': {
          edgeship: { target: info, path: info.manifestPath, headers: { 'if-none-match': info.etag } },
          bare: { target: bare.info, path: '/manifest', headers: { 'if-none-match': info.etag } },
        },
      }),
      ...(part('chunk') && {
        [chunkName]: {
          edgeship: { target: info, path: `/v1/chunks/${biggest.sha256}` },
          static: { target: fileServer.info, path: '/chunk' },
          bare: { target: bare.info, path: '/chunk' },
        },
      }),
    };
    const label: Record<string, string> = {
      bare: 'bare Hono route',
      static: 'node:http static file server',
    };
    // Warm every target (JIT, SQLite and page cache) before measuring.
    for (const s of Object.values(scenarios)) {
      for (const { target, ...opts } of Object.values(s)) await cannon(target, { ...opts, duration: 1 });
    }
    for (const [name, s] of Object.entries(scenarios)) {
      const runs = await interleaved(ctx, name, s, reps, duration);
      raw[name] = runs;
      const of = (who: string, key: keyof Load) => runs[who]!.map((r) => r[key]);
      const m = (who: string, key: keyof Load) => median(of(who, key));
      const isChunk = name === chunkName;
      const baselines = isChunk ? ['static', 'bare'] : ['bare'];
      for (const b of baselines) {
        rows.push(
          compared(
            `${name}: requests/s`,
            m('edgeship', 'reqPerSec'),
            'req/s',
            label[b]!,
            m(b, 'reqPerSec'),
            `update server ${spread(of('edgeship', 'reqPerSec'))}; baseline ${spread(of(b, 'reqPerSec'))}`,
          ),
        );
      }
      rows.push(
        compared(
          `${name}: p99 latency`,
          m('edgeship', 'p99Ms'),
          'ms',
          label[baselines[0]!]!,
          m(baselines[0]!, 'p99Ms'),
          `10 connections; update server ${spread(of('edgeship', 'p99Ms'))}`,
        ),
      );
      if (isChunk) {
        rows.push(
          compared(
            `${name}: throughput`,
            m('edgeship', 'bytesPerSec') / 1e6,
            'MB/s',
            label.static!,
            m('static', 'bytesPerSec') / 1e6,
          ),
        );
      }
      // The server's own cost, apart from what the load generator sharing the 2 cores can take.
      rows.push(
        compared(
          `${name}: server CPU per 1,000 requests`,
          m('edgeship', 'cpuPer1k'),
          'CPU s',
          label[baselines[0]!]!,
          m(baselines[0]!, 'cpuPer1k'),
          `update server ${spread(of('edgeship', 'cpuPer1k'), 3)}; baseline ${spread(of(baselines[0]!, 'cpuPer1k'), 3)}`,
        ),
      );
      const ratioTo = (b: string) => m('edgeship', 'reqPerSec') / m(b, 'reqPerSec');
      if (isChunk)
        goals.push(ratioGoal(`${name}: ≥ 0.8x a node:http static file server`, ratioTo('static'), 0.8));
      else {
        goals.push(ratioGoal(`${name}: ≥ 0.8x the bare Hono route`, ratioTo('bare'), 0.8));
        const p99 = m('edgeship', 'p99Ms');
        goals.push({
          goal: `${name}: p99 ≤ 2 ms at 10 connections`,
          met: p99 < 2,
          detail: `${p99} ms (${spread(of('edgeship', 'p99Ms'))})`,
        });
      }
      const failures = runs.edgeship!.reduce((n, r) => n + r.non2xx + r.errors, 0);
      if (failures) notes.push(`${name}: ${failures} non-2xx/3xx answers or errors from the update server.`);
    }

    // Telemetry ingest: parse + schema only (ceiling), SQLite (this server), PostgreSQL (a fresh
    // database), interleaved per repetition.
    const probe = part('telemetry') ? await hasTelemetryIngest(info.url) : null;
    if (probe) raw.telemetryProbe = probe;
    if (!probe) notes.push(`Parts run: ${ctx.parts!.join(', ')} (--parts); telemetry ingest not measured.`);
    else if (!probe.ok) {
      const reason = `POST /v1/telemetry answered ${probe.status} (${probe.body.slice(0, 120)}): the ingest endpoint is not there yet`;
      goals.push({
        goal: 'telemetry batches/s on SQLite and PostgreSQL',
        met: null,
        detail: `pending: ${reason}`,
      });
      notes.push(`Telemetry ingest: pending. ${reason}.`);
    } else {
      const dbName = `edgeship_bench_${process.pid}_${Date.now()}`;
      const admin = new pg.Client({ connectionString: PG_ADMIN });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${dbName}`);
      try {
        const url = new URL(PG_ADMIN);
        url.pathname = `/${dbName}`;
        const onPg = await startEdgeship(url.toString());
        children.push(onPg);
        // Pre-signed requests, a fresh pool per run (each batch id is ingested once); the pool
        // outlasting the run is checked below. Many devices send at once in a fleet: group
        // commit is measured at INGEST_CONNECTIONS concurrent senders, the baseline too.
        const pools: Record<string, { requests: ReturnType<typeof presignedRequests>; next: number }> = {};
        let liveSigned = 0;
        const post = (name: string, target: Target, path = '/v1/telemetry') => ({
          target,
          path,
          connections: INGEST_CONNECTIONS,
          requests: [
            {
              method: 'POST' as const,
              headers: { 'content-type': 'application/json' },
              setupRequest: (req: autocannon.Request) => {
                const pool = pools[name]!;
                // The bare route keeps no batch ids: it may go round its pool again, and the load
                // generator never signs while that baseline runs (it outran its pool before, and
                // signing on the same cores held the ceiling down).
                const next =
                  name === 'bare'
                    ? pool.requests[pool.next++ % pool.requests.length]
                    : pool.requests[pool.next++];
                if (next) return { ...req, ...next };
                liveSigned++;
                return { ...req, ...telemetryRequest(pool.next % DEVICES) };
              },
            },
          ],
        });
        const runs = await interleaved(
          ctx,
          'telemetry',
          {
            bare: post('bare', bare.info, '/telemetry'),
            SQLite: post('SQLite', info),
            PostgreSQL: post('PostgreSQL', onPg.info),
          },
          reps,
          duration,
          (who) => {
            pools[who] = { requests: presignedRequests(POOL_PER_RUN, DEVICES), next: 0 };
          },
        );
        raw.liveSignedRequests = liveSigned;
        if (liveSigned > 0)
          notes.push(
            `telemetry: ${liveSigned} requests outran the pre-signed pool (${POOL_PER_RUN} per run) and were signed while the load ran.`,
          );
        raw.telemetry = runs;
        const of = (who: string, key: keyof Load) => runs[who]!.map((r) => r[key]);
        const m = (who: string, key: keyof Load) => median(of(who, key));
        // Is the load generator (one thread, on the same 2 cores) what holds a target back?
        for (const who of ['bare', 'SQLite', 'PostgreSQL']) {
          rows.push(
            plain(
              `telemetry load generator CPU while driving ${who === 'bare' ? 'the bare route' : who}`,
              m(who, 'clientCores'),
              'cores',
              `autocannon's process, share of one core's time; ${spread(of(who, 'clientCores'), 2)}`,
            ),
          );
        }
        for (const db of ['SQLite', 'PostgreSQL']) {
          rows.push(
            compared(
              `telemetry ingest on ${db}: batches/s`,
              m(db, 'reqPerSec'),
              'batch/s',
              'bare Hono route (parse + schema check)',
              m('bare', 'reqPerSec'),
              `2 records per batch, signed ahead, ${INGEST_CONNECTIONS} connections; ${spread(of(db, 'reqPerSec'))}`,
            ),
          );
          rows.push(plain(`telemetry ingest on ${db}: p99 latency`, m(db, 'p99Ms'), 'ms'));
          rows.push(
            plain(
              `telemetry ingest on ${db}: server CPU per 1,000 batches`,
              m(db, 'cpuPer1k'),
              'CPU s',
              spread(of(db, 'cpuPer1k'), 2),
            ),
          );
          const rate = m(db, 'reqPerSec');
          goals.push({
            goal: `telemetry ingest on ${db}: ≥ 5,000 batches/s`,
            met: rate >= 5000 * 1.05,
            detail: `${Math.round(rate)} batches/s (${spread(of(db, 'reqPerSec'))})`,
          });
          const failed = runs[db]!.reduce((n, r) => n + r.non2xx + r.errors, 0);
          if (failed) notes.push(`telemetry on ${db}: ${failed} non-2xx answers or errors.`);
        }
        rows.push(
          plain(
            'telemetry parse + schema check alone (bare route): batches/s',
            m('bare', 'reqPerSec'),
            'batch/s',
            spread(of('bare', 'reqPerSec')),
          ),
        );
        await onPg.stop();
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
        await admin.end();
      }
    }
  } finally {
    for (const child of children) await child.stop();
    await rm(specFile, { force: true });
    await rm(chunkFile, { force: true });
  }
  const load1 = loadavg();
  notes.push(
    `Load average (1, 5, 15 min) at the start ${load0.map((x) => x.toFixed(1)).join(', ')}, at the end ${load1.map((x) => x.toFixed(1)).join(', ')} (2 cores): absolute numbers move with the load, same-run ratios much less.`,
    'The update server runs with its full middleware (request id, logging at level silent, metrics, CORS, rate limit raised out of the way); manifests come from its in-memory cache (one version read per channel every 500 ms), chunks stream from its blob store; the bare route returns bytes from memory.',
    'autocannon runs in the runner process and each server in its own process: on 2 cores they compete for CPU, as on any loaded host; ratios compare like with like.',
  );
  return {
    name: 'update-server',
    title: 'Update server under load (autocannon on loopback, SQLite and PostgreSQL)',
    settings: {
      reps,
      durationSec: duration,
      connections: 10,
      ingestConnections: INGEST_CONNECTIONS,
      ...(ctx.parts && { parts: ctx.parts }),
    },
    rows,
    goals,
    notes,
    raw: { ...raw, loadavg: { start: load0, end: load1 } },
  };
};
