// 4. Update server under load (autocannon on loopback, server in its own process): manifest
// checks answered 200 and 304, chunk serving, against a bare Hono route returning the same bytes
// (the ceiling); telemetry ingest on SQLite and PostgreSQL when the endpoint exists.
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { SOURCE_NODE_ARGS } from '../../test/support/node-args.ts';
import { cpuSeconds } from './proc.ts';
import type { Benchmark, Goal, Row } from './result.ts';
import { compared, plain } from './rows.ts';
import { type Child, spawnServer } from './servers/spawn.ts';
import { median } from './stats.ts';
import { hasTelemetryIngest, telemetryRequest } from './telemetry-batch.ts';

const here = dirname(fileURLToPath(import.meta.url));
const PG_ADMIN = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

interface EdgeshipInfo {
  url: string;
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
}

async function cannon(
  target: { url: string; pid: number },
  opts: Omit<autocannon.Options, 'url'> & { path: string },
): Promise<Load> {
  const cpu0 = cpuSeconds(target.pid);
  const { path, ...rest } = opts;
  const result = await autocannon({ url: `${target.url}${path}`, connections: 10, ...rest });
  const cpu = cpuSeconds(target.pid) - cpu0;
  const statusOk = (result['2xx'] ?? 0) + (result['3xx'] ?? 0);
  return {
    reqPerSec: result.requests.average,
    p99Ms: result.latency.p99,
    bytesPerSec: result.throughput.average,
    non2xx: result.non2xx - (result['3xx'] ?? 0),
    errors: result.errors + result.timeouts,
    cpuPer1k: statusOk ? (cpu / statusOk) * 1000 : Number.NaN,
  };
}

function startEdgeship(databaseUrl?: string) {
  return spawnServer<EdgeshipInfo>(
    [...SOURCE_NODE_ARGS, join(here, 'servers/edgeship-child.ts')],
    databaseUrl ? { BENCH_DATABASE_URL: databaseUrl } : {},
  );
}

export const updateServer: Benchmark = async (ctx) => {
  const reps = ctx.quick ? 1 : 3;
  const duration = ctx.quick ? 3 : 8;
  const edgeship = await startEdgeship();
  const children: Child<{ url: string; pid: number }>[] = [edgeship];
  const rows: Row[] = [];
  const goals: Goal[] = [];
  const notes: string[] = [];
  const raw: Record<string, unknown> = {};
  const specFile = join(tmpdir(), `edgeship-bench-bare-${process.pid}.json`);
  try {
    const { info } = edgeship;
    const biggest = [...info.chunks].sort((a, b) => b.size - a.size)[0]!;
    const chunkBytes = new Uint8Array(
      await (await fetch(`${info.url}/v1/chunks/${biggest.sha256}`)).arrayBuffer(),
    );
    await writeFile(
      specFile,
      JSON.stringify({
        etag: info.etag,
        manifestBase64: info.manifestBase64,
        chunkBase64: Buffer.from(chunkBytes).toString('base64'),
      }),
    );
    const bare = await spawnServer<{ url: string; pid: number }>([
      ...SOURCE_NODE_ARGS,
      join(here, 'servers/bare-hono-child.ts'),
      specFile,
    ]);
    children.push(bare);

    const scenarios = {
      'manifest 200': {
        edgeship: { path: info.manifestPath },
        bare: { path: '/manifest' },
      },
      'manifest 304 (If-None-Match)': {
        edgeship: { path: info.manifestPath, headers: { 'if-none-match': info.etag } },
        bare: { path: '/manifest', headers: { 'if-none-match': info.etag } },
      },
      [`chunk GET (${Math.round(biggest.size / 1024)} KiB)`]: {
        edgeship: { path: `/v1/chunks/${biggest.sha256}` },
        bare: { path: '/chunk' },
      },
    };
    // Warm both (JIT, SQLite page cache) before measuring.
    for (const s of Object.values(scenarios)) {
      await cannon(info, { ...s.edgeship, duration: 1 });
      await cannon(bare.info, { ...s.bare, duration: 1 });
    }
    for (const [name, s] of Object.entries(scenarios)) {
      const runs: { edgeship: Load[]; bare: Load[] } = { edgeship: [], bare: [] };
      for (let rep = 0; rep < reps; rep++) {
        ctx.log(`${name}: rep ${rep + 1}/${reps}`);
        const order = rep % 2 ? (['bare', 'edgeship'] as const) : (['edgeship', 'bare'] as const);
        for (const who of order) {
          runs[who].push(await cannon(who === 'edgeship' ? info : bare.info, { ...s[who], duration }));
        }
      }
      raw[name] = runs;
      const m = (who: 'edgeship' | 'bare', key: keyof Load) => median(runs[who].map((r) => r[key]));
      const isChunk = name.startsWith('chunk');
      rows.push(
        compared(
          `${name}: requests/s`,
          m('edgeship', 'reqPerSec'),
          'req/s',
          'bare Hono route',
          m('bare', 'reqPerSec'),
        ),
      );
      rows.push(
        compared(
          `${name}: p99 latency`,
          m('edgeship', 'p99Ms'),
          'ms',
          'bare Hono route',
          m('bare', 'p99Ms'),
          '10 connections',
        ),
      );
      if (isChunk) {
        rows.push(
          compared(
            `${name}: throughput`,
            m('edgeship', 'bytesPerSec') / 1e6,
            'MB/s',
            'bare Hono route',
            m('bare', 'bytesPerSec') / 1e6,
          ),
        );
      }
      rows.push(plain(`${name}: server CPU per 1,000 requests`, m('edgeship', 'cpuPer1k'), 'CPU s'));
      const failures = runs.edgeship.reduce((n, r) => n + r.non2xx + r.errors, 0);
      if (failures) notes.push(`${name}: ${failures} non-2xx/3xx answers or errors from the update server.`);
    }

    // Telemetry ingest: SQLite (this server), then PostgreSQL (a fresh database).
    const probe = await hasTelemetryIngest(info.url);
    raw.telemetryProbe = probe;
    if (!probe.ok) {
      const reason = `POST /v1/telemetry answered ${probe.status} (${probe.body.slice(0, 120)}): the ingest endpoint is not there yet`;
      goals.push({
        goal: 'telemetry batches/s on SQLite and PostgreSQL',
        met: null,
        detail: `pending: ${reason}`,
      });
      notes.push(`Telemetry ingest: pending. ${reason}.`);
    } else {
      const ingest = async (target: { url: string; pid: number }, label: string, path = '/v1/telemetry') => {
        let device = 0;
        const runs: Load[] = [];
        for (let rep = 0; rep < reps; rep++) {
          ctx.log(`telemetry ${label}: rep ${rep + 1}/${reps}`);
          runs.push(
            await cannon(target, {
              path,
              duration,
              requests: [
                {
                  method: 'POST',
                  headers: { 'content-type': 'application/json' },
                  setupRequest: (req) => ({
                    ...req,
                    ...telemetryRequest(device++ % 10_000),
                  }),
                },
              ],
            }),
          );
        }
        raw[`telemetry ${label}`] = runs;
        rows.push(
          plain(
            `telemetry ingest on ${label}: batches/s`,
            median(runs.map((r) => r.reqPerSec)),
            'batch/s',
            '2 records per batch',
          ),
        );
        rows.push(plain(`telemetry ingest on ${label}: p99 latency`, median(runs.map((r) => r.p99Ms)), 'ms'));
        rows.push(
          plain(
            `telemetry ingest on ${label}: server CPU per 1,000 batches`,
            median(runs.map((r) => r.cpuPer1k)),
            'CPU s',
          ),
        );
        const failed = runs.reduce((n, r) => n + r.non2xx + r.errors, 0);
        if (failed) notes.push(`telemetry on ${label}: ${failed} non-2xx answers or errors.`);
        return median(runs.map((r) => r.reqPerSec));
      };
      const ceiling = await ingest(
        bare.info,
        'bare Hono route (parse + schema check, no storage)',
        '/telemetry',
      );
      const sqlite = await ingest(info, 'SQLite');
      rows.push(
        compared(
          'telemetry ingest: SQLite batches/s',
          sqlite,
          'batch/s',
          'bare Hono route (parse + schema check)',
          ceiling,
        ),
      );
      const dbName = `edgeship_bench_${process.pid}_${Date.now()}`;
      const admin = new pg.Client({ connectionString: PG_ADMIN });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${dbName}`);
      try {
        const url = new URL(PG_ADMIN);
        url.pathname = `/${dbName}`;
        const onPg = await startEdgeship(url.toString());
        children.push(onPg);
        const postgres = await ingest(onPg.info, 'PostgreSQL');
        await onPg.stop();
        rows.push(compared('telemetry ingest: PostgreSQL batches/s', postgres, 'batch/s', 'SQLite', sqlite));
        rows.push(
          compared(
            'telemetry ingest: PostgreSQL batches/s',
            postgres,
            'batch/s',
            'bare Hono route (parse + schema check)',
            ceiling,
          ),
        );
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
        await admin.end();
      }
    }
  } finally {
    for (const child of children) await child.stop();
    await rm(specFile, { force: true });
  }
  const ceiling = rows.find((r) => r.metric === 'manifest 304 (If-None-Match): requests/s');
  notes.push(
    'The update server runs with its full middleware (request id, logging at level silent, metrics, CORS, rate limit raised out of the way) and reads the manifest from its registry on every request; the bare route returns bytes from memory.',
    'autocannon runs in the runner process and each server in its own process: on 2 cores they compete for CPU, as on any loaded host; ratios compare like with like.',
  );
  return {
    name: 'update-server',
    title: 'Update server under load (autocannon on loopback, SQLite)',
    settings: { reps, durationSec: duration, connections: 10 },
    rows,
    goals,
    notes,
    raw: { ...raw, ceilingRatio: ceiling?.ratio },
  };
};
