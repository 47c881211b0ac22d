import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import {
  type Backend,
  type Histogram,
  type MonitoringSpec,
  recordValue,
  type TelemetryBatch,
  type TelemetryRecord,
} from '@edgeship/protocol';

/**
 * Builders shared by the telemetry tests and the fleet simulator: a monitoring spec with one
 * feature over [0, 1], valid batches, and a spawned real `edgeship-server` process.
 */

/** Ten equal bins over [0, 1]. */
export const ENERGY_EDGES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/** The reference a publisher profiles from uniform reference data: 10% per bin. */
export function uniformMonitoring(): MonitoringSpec {
  return {
    features: [
      {
        name: 'energy',
        source: { from: 'input', tensor: 'x', reduce: 'rms' },
        binEdges: ENERGY_EDGES,
        reference: ENERGY_EDGES.map(() => 0.1).concat(0.1),
      },
    ],
  };
}

export interface RecordInput {
  model: string;
  version: string;
  backend?: Backend;
  role?: 'active' | 'shadow';
  latenciesMs?: number[];
  /** Inferences beyond the latency samples (a record may carry counts without samples). */
  inferences?: number;
  errors?: TelemetryRecord['errors'];
  energy?: number[];
  shadow?: TelemetryRecord['shadow'];
}

export function makeRecord(input: RecordInput): TelemetryRecord {
  const latencyMs: Histogram = {};
  for (const ms of input.latenciesMs ?? []) recordValue(latencyMs, ms);
  return {
    model: input.model,
    version: input.version,
    backend: input.backend ?? 'wasm',
    role: input.role ?? 'active',
    inferences: input.inferences ?? input.latenciesMs?.length ?? 0,
    errors: input.errors ?? {},
    latencyMs,
    downloadBytes: 0,
    downloadMs: 0,
    features: input.energy ? [{ name: 'energy', counts: input.energy }] : [],
    ...(input.shadow ? { shadow: input.shadow } : {}),
  };
}

export function makeBatch(
  deviceId: string,
  records: TelemetryRecord[],
  fields: Partial<TelemetryBatch> = {},
): TelemetryBatch {
  const now = Date.now();
  return {
    schema: 1,
    batchId: randomUUID(),
    deviceId,
    app: 'demo-app',
    channel: 'stable',
    runtimeVersion: '0.1.0',
    windowStart: new Date(now - 60_000).toISOString(),
    windowEnd: new Date(now).toISOString(),
    dropped: 0,
    records,
    ...fields,
  };
}

/** POSTs a batch the way runtime/src/telemetry/sender.ts does. */
export async function postBatch(
  server: string,
  batch: TelemetryBatch,
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${server}/v1/telemetry`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': batch.batchId },
    body: JSON.stringify(batch),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: response.status, body };
}

export const SERVER_BIN = resolve(import.meta.dirname, '../../bin/edgeship-server.mjs');

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  stderr: string[];
  /** Waits for the process to exit after a signal. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

/**
 * Spawns a real server process (`edgeship-server` by default, or any script that prints the same
 * `{"event":"listening","url"}` line) and waits until it listens.
 */
export async function spawnServer(
  args: string[],
  opts: { script?: string; nodeArgs?: string[]; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ServerProcess> {
  // The condition resolves @edgeship/* to their sources, for a TS script (the bin adds it itself).
  const nodeArgs = ['--conditions=edgeship-source', ...(opts.nodeArgs ?? [])];
  const child = spawn(process.execPath, [...nodeArgs, opts.script ?? SERVER_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DATABASE_URL: undefined, ...opts.env },
  });
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (text: string) => stderr.push(text));
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not listen in ${timeoutMs} ms: ${stderr.join('')}`)),
      timeoutMs,
    );
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`server ${why}: ${stderr.join('')}`));
    };
    child.once('error', (error) => fail(`could not start (${error.message})`));
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal}) before listening`));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const event = JSON.parse(line) as { event?: string; url?: string };
        if (event.event === 'listening' && typeof event.url === 'string') {
          clearTimeout(timer);
          child.removeAllListeners('exit');
          resolveUrl(event.url);
        }
      } catch {}
    });
  });
  return {
    url,
    child,
    stderr,
    kill(signal) {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      const exited = new Promise<void>((done) => child.once('exit', () => done()));
      child.kill(signal);
      return exited;
    },
  };
}
