// What the telemetry store costs per batch on fleet-shaped groups, without HTTP, signatures or the
// schema check: `TelemetryStore.ingest` on SQLite (or PostgreSQL with --pg) in groups as the fleet
// simulator's server makes them (7 records a batch, one per model; each device one batch a window,
// so nearly every batch opens a new window for its device), with the time of each SQL statement.
//
//   node --conditions=edgeship-source --import tsx bench/fleet/ingest-cost.ts --devices 10000 --windows 4
//
// Prints one JSON line: CPU and wall per 1,000 batches over the measured windows (the first is
// warm-up), the database's growth, and (SQLite) each statement's share of the store's time.

import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mulberry32, recordValue, type TelemetryBatch, type TelemetryRecord } from '@edgeship/protocol';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { testBatch } from '../../test/support/telemetry-batch.ts';
import { openStorage, type Storage } from '../../update-server/src/storage/open.ts';
import { closeStorage, createTestSchema } from '../../update-server/src/storage/registry.suite.ts';
import { TelemetryStore } from '../../update-server/src/telemetry/store.ts';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '10000' },
    windows: { type: 'string', default: '4' },
    group: { type: 'string', default: '9' },
    models: { type: 'string', default: '7' },
    pg: { type: 'boolean', default: false },
    resend: { type: 'string', default: '0.02' },
    // PostgreSQL: leave the schema in place (its name is printed) to look at its plans.
    keep: { type: 'boolean', default: false },
  },
});
const devices = Number(values.devices);
const windows = Number(values.windows);
const groupSize = Number(values.group);
const models = Array.from({ length: Number(values.models) }, (_, i) => `model-${i}`);

// Per-statement time (SQLite): every prepared statement's run/all/get, by its SQL text.
const timing = new Map<string, { n: number; ms: number }>();
const proto = SqliteDatabase.prototype as unknown as { prepare: (sql: string) => object };
const prepare = proto.prepare;
proto.prepare = function (this: unknown, text: string) {
  const statement = prepare.call(this, text) as Record<string, (...a: unknown[]) => unknown>;
  const key = text.replace(/\s+/g, ' ').slice(0, 90);
  for (const m of ['run', 'all', 'get']) {
    const f = statement[m]!.bind(statement);
    statement[m] = (...args: unknown[]) => {
      const t0 = performance.now();
      try {
        return f(...args);
      } finally {
        const e = timing.get(key) ?? { n: 0, ms: 0 };
        e.n++;
        e.ms += performance.now() - t0;
        timing.set(key, e);
      }
    };
  }
  return statement;
};

// Per-statement time (PostgreSQL): each query's round trip, by its text.
const query = pg.Client.prototype.query as (...a: unknown[]) => unknown;
pg.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
  const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string })?.text;
  const result = query.apply(this, args);
  if (!text || !(result instanceof Promise)) return result;
  const key = text.replace(/\s+/g, ' ').slice(0, 90);
  const t0 = performance.now();
  return result.finally(() => {
    const e = timing.get(key) ?? { n: 0, ms: 0 };
    e.n++;
    e.ms += performance.now() - t0;
    timing.set(key, e);
  });
} as typeof pg.Client.prototype.query;

/** CPU seconds of every postgres process on this host (the server's side of the work). */
function postgresCpuSec(): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!name.startsWith('postgres')) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {}
  }
  return ticks / 100;
}

const random = mulberry32(1);
const ids = Array.from(
  { length: devices },
  () => (generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }) as { x: string }).x,
);
function record(model: string): TelemetryRecord {
  const latencyMs = {};
  for (let i = 0; i < 15; i++) recordValue(latencyMs, 10 * Math.exp(0.6 * (random() - 0.5)));
  const energy = Array.from({ length: 10 }, () => Math.floor(random() * 3));
  return {
    model,
    version: random() < 0.1 ? '1.1.0' : '1.0.0',
    backend: 'wasm',
    role: 'active',
    inferences: 15,
    errors: random() < 0.05 ? { E_INTERNAL: 1 } : {},
    latencyMs,
    downloadBytes: 0,
    downloadMs: 0,
    features: [{ name: 'energy', counts: energy }],
  };
}
function batch(device: number): TelemetryBatch {
  return testBatch(models.map(record), { deviceId: ids[device]!, app: 'fleet-app' });
}

const dir = await mkdtemp(join(tmpdir(), 'edgeship-ingest-cost-'));
const schema = values.pg ? await createTestSchema() : null;
const storage: Storage = await openStorage({ dataDir: dir, ...(schema && { databaseUrl: schema.url }) });
const store = new TelemetryStore(storage.db, storage.dialect);
const cap = { batchesPerWindow: 120, inferencesPerWindow: 2_000_000 };
const perWindow: Array<{ cpuMs: number; wallMs: number; pgCpuMs: number }> = [];
let duplicates = 0;
let sent: TelemetryBatch[] = [];
try {
  for (let w = 0; w < windows; w++) {
    if (w === 1) timing.clear();
    const windowStart = 1_800_000_000 + w * 60;
    const order = Array.from({ length: devices }, (_, i) => i).sort(() => random() - 0.5);
    const pg0 = schema ? postgresCpuSec() : 0;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < order.length; i += groupSize) {
      const group = order.slice(i, i + groupSize).map(batch);
      // The fleet's re-sends: an acknowledged batch again, answered as a duplicate.
      const again = sent.filter(() => random() < Number(values.resend) / groupSize).slice(0, 1);
      const outcomes = await store.ingest([...group, ...again], windowStart, cap, new Date().toISOString());
      duplicates += outcomes.filter((o) => o === 'duplicate').length;
      sent = group;
    }
    const c = process.cpuUsage(c0);
    perWindow.push({
      cpuMs: (c.user + c.system) / 1000,
      wallMs: performance.now() - t0,
      pgCpuMs: schema ? (postgresCpuSec() - pg0) * 1000 : 0,
    });
  }
  const measured = perWindow.slice(1);
  const cpu = measured.reduce((a, b) => a + b.cpuMs, 0);
  const wall = measured.reduce((a, b) => a + b.wallMs, 0);
  const batches = measured.length * devices;
  const total = [...timing.values()].reduce((a, b) => a + b.ms, 0);
  let bytes: number | null = null;
  if (!schema) {
    const s = await stat(join(dir, 'registry.db')).catch(() => null);
    bytes = s?.size ?? null;
  }
  console.log(
    JSON.stringify({
      dialect: storage.dialect,
      devices,
      groupSize,
      windows,
      duplicates,
      cpuSecPer1k: +(cpu / batches).toFixed(4),
      wallSecPer1k: +(wall / batches).toFixed(4),
      ...(schema && {
        postgresCpuSecPer1k: +(measured.reduce((a, b) => a + b.pgCpuMs, 0) / batches).toFixed(4),
      }),
      perWindowCpuMs: perWindow.map((p) => Math.round(p.cpuMs)),
      dbBytes: bytes,
      statements: [...timing.entries()]
        .sort((a, b) => b[1].ms - a[1].ms)
        .slice(0, 12)
        .map(([sql, t]) => ({
          sql,
          n: t.n,
          msPer1k: +((t.ms / batches) * 1000).toFixed(1),
          share: +(t.ms / total).toFixed(3),
        })),
    }),
  );
} finally {
  await closeStorage(storage);
  if (values.keep && schema) console.error(`kept schema ${schema.name}`);
  else await schema?.drop();
  await rm(dir, { recursive: true, force: true });
}
