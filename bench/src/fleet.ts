// 7. Fleet: the fleet simulator's staged rollout of a healthy release (bench/fleet/simulate.ts,
// called through its CLI, forged-telemetry scenarios included) at 1,000 / 10,000 / 100,000
// devices: wall time, CPU of the server process it spawns, and how both grow with the fleet.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SOURCE_NODE_ARGS } from '../../test/support/node-args.ts';
import { cpuSeconds } from './proc.ts';
import type { Benchmark, Goal, Row } from './result.ts';
import { compared, plain } from './rows.ts';
import { round } from './stats.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const simulator = resolve(here, '../fleet/simulate.ts');
const TITLE = 'Fleet: simulated staged rollout at 1,000 / 10,000 / 100,000 devices';

/** Direct children of a process (from /proc): the server the simulator spawns. */
function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const child of text.split(/\s+/).filter(Boolean)) out.push(Number(child));
    }
  } catch {
    // the process has exited
  }
  return out;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

interface SimulatorReport {
  wallMs: number;
  ticks: number;
  batches: { acknowledged: number; generated: number; duplicatesCounted: number };
  forgedDevices?: number;
  scenarios: Array<{
    scenario: string;
    outcome: string;
    haltedAtShareBps: number | null;
    /** How 5% of the devices lied about this model (bench/fleet/simulate.ts --forged-share). */
    forged?: 'bad' | 'good' | null;
    haltReason?: string | null;
    exposureShareOfDeviceHours?: number;
    detectionDelayCheckIntervals?: number | null;
    ninetyNineOffAfter?: { minutes: number; checkIntervals: number } | null;
  }>;
}

interface SizeResult {
  devices: number;
  /** The simulator's own wall time of its scenarios (setup excluded). */
  wallMs: number | null;
  /** The whole simulator process, start to exit. */
  processMs: number;
  /** CPU of the server process, sampled every 250 ms until it exits (the last 250 ms may be missed). */
  serverCpuSec: number | null;
  simulatorCpuSec: number | null;
  batches?: number;
  duplicatesCounted?: number;
  outcomes?: string[];
  /** Forged-telemetry scenarios: forged bad on a healthy canary must be promoted, forged good on a regressed one halted. */
  forgedHeld?: boolean;
  forgedDevices?: number;
  scenarios?: SimulatorReport['scenarios'];
  error?: string;
}

/** Runs the simulator's CLI (`--devices N`) and follows its server's CPU through /proc. */
async function runSimulator(devices: number, limitMs: number): Promise<SizeResult> {
  const out = join(tmpdir(), `edgeship-fleet-${process.pid}-${devices}.json`);
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [...SOURCE_NODE_ARGS, simulator, '--devices', String(devices), '--seed', '1', '--out', out],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (t: string) => {
    stderr.push(t);
    if (stderr.length > 200) stderr.shift();
  });
  let serverPid: number | null = null;
  let serverCpu: number | null = null;
  let simulatorCpu: number | null = null;
  const poll = setInterval(() => {
    try {
      serverPid ??= childPids(child.pid!).find((pid) => commandLine(pid).includes('server-process')) ?? null;
      if (serverPid) serverCpu = cpuSeconds(serverPid);
      simulatorCpu = cpuSeconds(child.pid!);
    } catch {
      // exited between the listing and the read
    }
  }, 250);
  // Over the time limit: stop the simulator and the server it spawned (it would outlive it).
  const killer = setTimeout(() => {
    child.kill('SIGTERM');
    if (serverPid) process.kill(serverPid, 'SIGTERM');
  }, limitMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearInterval(poll);
  clearTimeout(killer);
  const processMs = performance.now() - t0;
  if (code !== 0) {
    return {
      devices,
      wallMs: null,
      processMs,
      serverCpuSec: serverCpu,
      simulatorCpuSec: simulatorCpu,
      error:
        processMs >= limitMs
          ? `did not finish within ${limitMs / 60_000} minutes`
          : `exited ${code}: ${stderr.join('').slice(-400)}`,
    };
  }
  const report = JSON.parse(await readFile(out, 'utf8')) as SimulatorReport;
  await rm(out, { force: true });
  return {
    devices,
    wallMs: report.wallMs,
    processMs,
    serverCpuSec: serverCpu,
    simulatorCpuSec: simulatorCpu,
    batches: report.batches.acknowledged,
    duplicatesCounted: report.batches.duplicatesCounted,
    outcomes: report.scenarios.map((s) => `${s.scenario}: ${s.outcome}`),
    forgedDevices: report.forgedDevices,
    forgedHeld: forgedHeld(report),
    scenarios: report.scenarios,
  };
}

const pct = (x: number) => `${round(x * 100, 2)}%`;

/**
 * What operators need from the 10,000-device run: each bad canary (starting at 1%) halted with
 * its exposure in device-hours, the delay to the halt and the time until 99% of the devices then
 * on it had left, in check intervals; and a one-browser regression halted while the healthy
 * release was promoted.
 */
function operatorGoals(r: SizeResult | undefined): { rows: Row[]; goals: Goal[] } {
  const rows: Row[] = [];
  const scenarios = r?.scenarios ?? [];
  const bad = scenarios.filter((s) => s.scenario.startsWith('bad canary') && !s.forged);
  for (const s of bad) {
    const note = `${s.outcome}${s.haltReason ? `: ${s.haltReason}` : ''}`;
    rows.push(
      plain(
        `10k, ${s.scenario}: exposure`,
        (s.exposureShareOfDeviceHours ?? Number.NaN) * 100,
        '% of device-hours',
        note,
      ),
    );
    rows.push(
      plain(
        `10k, ${s.scenario}: delay to halt`,
        s.detectionDelayCheckIntervals ?? Number.NaN,
        'check intervals',
        'from the first candidate telemetry acknowledged',
      ),
    );
    rows.push(
      plain(
        `10k, ${s.scenario}: 99% off after the halt`,
        s.ninetyNineOffAfter?.checkIntervals ?? Number.NaN,
        'check intervals',
        s.ninetyNineOffAfter ? `${s.ninetyNineOffAfter.minutes} simulated minutes` : 'not reached',
      ),
    );
  }
  const firefox = scenarios.find((s) => /Firefox only/.test(s.scenario));
  const good = scenarios.find((s) => s.scenario.startsWith('good release') && !s.forged);
  const missing = r?.scenarios ? '' : `10,000 devices: ${r?.error ?? 'not run'}`;
  const goals: Goal[] = [
    {
      goal: "a bad canary at 1% halted with exposure at most 1.1% of the fleet's device-hours (10,000 devices)",
      met:
        bad.length > 0
          ? bad.every((s) => s.outcome === 'halted' && (s.exposureShareOfDeviceHours ?? 1) <= 0.011)
          : null,
      detail:
        missing ||
        bad
          .map((s) => `${s.scenario}: ${s.outcome}, ${pct(s.exposureShareOfDeviceHours ?? Number.NaN)}`)
          .join('; '),
    },
    {
      goal: '99% of active devices off a halted release within 2 check intervals (10,000 devices)',
      met: bad.length > 0 ? bad.every((s) => (s.ninetyNineOffAfter?.checkIntervals ?? 99) <= 2) : null,
      detail:
        missing ||
        bad
          .map(
            (s) =>
              `${s.scenario}: ${s.ninetyNineOffAfter ? round(s.ninetyNineOffAfter.checkIntervals, 2) : 'not reached'}`,
          )
          .join('; '),
    },
    {
      goal: 'a one-browser regression halted while the others continue (10,000 devices)',
      met: firefox && good ? firefox.outcome === 'halted' && good.outcome === 'promoted' : null,
      detail:
        missing ||
        `${firefox?.scenario}: ${firefox?.outcome} (${firefox?.haltReason}); ${good?.scenario}: ${good?.outcome}`,
    },
  ];
  return { rows, goals };
}

/** Neither forgery steered: a healthy canary lied about as bad was promoted, a regressed one lied about as good was halted. */
function forgedHeld(report: SimulatorReport): boolean | undefined {
  const forged = report.scenarios.filter((s) => s.forged);
  if (forged.length === 0) return undefined;
  return forged.every((s) => s.outcome === (s.forged === 'bad' ? 'promoted' : 'halted'));
}

export const fleet: Benchmark = async (ctx) => {
  const sizes = ctx.fleetDevices ?? (ctx.quick ? [1_000, 10_000] : [1_000, 10_000, 100_000]);
  // 100,000 devices took 17.8 min on one quiet 2-core machine (bench/fleet/results-100k.json) and
  // over 30 min on another whose server needed 1.8x the CPU per batch: the cap leaves room for both.
  const limitMs = (ctx.quick && !ctx.fleetDevices ? 5 : 60) * 60_000;
  if (!existsSync(simulator)) {
    return {
      name: 'fleet',
      title: TITLE,
      settings: { sizes },
      rows: [],
      goals: [
        {
          goal: 'wall time and server CPU of a 10,000-device rollout, and their growth with fleet size',
          met: null,
          detail: 'pending: bench/fleet/simulate.ts does not exist yet',
        },
      ],
      pending: 'bench/fleet/simulate.ts (the fleet simulator) does not exist yet.',
    };
  }
  const results: SizeResult[] = [];
  for (const devices of sizes) {
    ctx.log(`fleet: ${devices} devices`);
    results.push(await runSimulator(devices, limitMs));
    ctx.log(`fleet: ${devices} devices → ${JSON.stringify(results.at(-1))}`);
  }
  const rows: Row[] = [];
  const base = results.find((r) => r.devices === 1_000 && r.wallMs !== null);
  for (const r of results) {
    if (r.wallMs === null) {
      rows.push(plain(`${r.devices.toLocaleString('en-US')} devices: wall time`, Number.NaN, 's', r.error));
      continue;
    }
    const note = `${r.batches} batches acknowledged, ${r.duplicatesCounted} counted twice`;
    if (base && r !== base) {
      rows.push(
        compared(
          `${r.devices.toLocaleString('en-US')} devices: wall time`,
          r.wallMs / 1000,
          's',
          '1,000 devices',
          base.wallMs! / 1000,
          note,
        ),
      );
      rows.push(
        compared(
          `${r.devices.toLocaleString('en-US')} devices: server CPU`,
          r.serverCpuSec ?? Number.NaN,
          'CPU s',
          '1,000 devices',
          base.serverCpuSec ?? Number.NaN,
        ),
      );
    } else {
      rows.push(plain(`${r.devices.toLocaleString('en-US')} devices: wall time`, r.wallMs / 1000, 's', note));
      rows.push(
        plain(
          `${r.devices.toLocaleString('en-US')} devices: server CPU`,
          r.serverCpuSec ?? Number.NaN,
          'CPU s',
        ),
      );
    }
    rows.push(
      plain(
        `${r.devices.toLocaleString('en-US')} devices: simulator process CPU (the simulated devices)`,
        r.simulatorCpuSec!,
        'CPU s',
      ),
    );
    if (r.batches)
      rows.push(
        plain(
          `${r.devices.toLocaleString('en-US')} devices: server CPU per 1,000 batches`,
          ((r.serverCpuSec ?? Number.NaN) / r.batches) * 1000,
          'CPU s',
        ),
      );
  }
  const ten = results.find((r) => r.devices === 10_000);
  const operator = operatorGoals(ten);
  rows.push(...operator.rows);
  return {
    name: 'fleet',
    title: TITLE,
    settings: {
      sizes,
      command: 'node --conditions=edgeship-source --import tsx bench/fleet/simulate.ts --devices N --seed 1',
      timeLimitMin: limitMs / 60_000,
    },
    rows,
    goals: [
      ...operator.goals,
      {
        goal: 'report wall time and server CPU of a 10,000-device rollout, and their growth with fleet size',
        met: ten?.wallMs != null,
        detail:
          ten?.wallMs != null
            ? `10,000 devices: ${round(ten.wallMs / 1000, 1)} s wall, ${round(ten.serverCpuSec ?? Number.NaN, 1)} CPU s on the server${base ? ` (${round(ten.wallMs / base.wallMs!, 2)}x and ${round((ten.serverCpuSec ?? 0) / (base.serverCpuSec ?? Number.NaN), 2)}x the 1,000-device run)` : ''}`
            : `10,000 devices: ${ten?.error ?? 'not run'}`,
      },
      {
        goal: 'telemetry forged by 5% of the devices neither halts a healthy canary nor hides a regressed one',
        met:
          results.every((r) => r.wallMs === null || r.forgedHeld !== false) &&
          results.some((r) => r.forgedHeld),
        detail: results
          .map(
            (r) =>
              `${r.devices.toLocaleString('en-US')} devices (${r.forgedDevices ?? '?'} forging): ${r.forgedHeld === undefined ? 'not run' : r.forgedHeld ? 'held' : 'STEERED'}`,
          )
          .join('; '),
      },
    ],
    notes: [
      'One run per size (a rollout takes minutes at scale): the ratios are growth with fleet size, not a same-run baseline.',
      'The simulator (its CLI: six rollouts side by side, one healthy and three bad canaries, then a healthy and a bad one about which 5% of the devices forge telemetry) and its server (bench/fleet/server-process.ts) are two processes sharing 2 cores; wall time is the simulator’s own report, server CPU is read from /proc every 250 ms.',
      `Outcomes at 10,000 devices: ${results.find((r) => r.devices === 10_000)?.outcomes?.join('; ') ?? 'n/a'}.`,
      ...(ctx.quick ? ['--quick: 100,000 devices not run.'] : []),
    ],
    raw: { results },
  };
};
