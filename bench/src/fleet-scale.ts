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
/** Many canaries on one simulated fleet, judged in-process by the server's analysis (bench/fleet/canaries.ts). */
export const canaryFleet = resolve(here, '../fleet/canaries.ts');
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
    /** Who widened the rollout, and the shares it was at (bench/fleet/report.ts). */
    staging?: 'ticks' | 'schedule';
    shares?: number[];
    stages: number[];
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

interface CanaryFleetRun {
  outcome: string;
  verdictLooks: number;
  looks: number;
  haltReason: string | null;
  latency: { ratio: number; z: number; p: number } | null;
}
interface CanaryFleetResult {
  label: string;
  runs: CanaryFleetRun[];
  forgedDevices: number;
  wallMs: number;
  error?: string;
}

/**
 * Runs bench/fleet/canaries.ts in `parts` processes side by side (the machine's two cores), each
 * its own share of the canaries on the same seeded 10,000-device fleet, and joins their runs.
 */
async function runCanaryFleet(
  label: string,
  devices: number,
  canaries: number,
  parts: number,
  extra: string[],
  limitMs: number,
): Promise<CanaryFleetResult> {
  const t0 = performance.now();
  const each = Math.ceil(canaries / parts);
  const results = await Promise.all(
    Array.from({ length: parts }, async (_, k) => {
      const out = join(tmpdir(), `edgeship-canaries-${process.pid}-${label.replace(/\W+/g, '-')}-${k}.json`);
      const child = spawn(
        process.execPath,
        [
          ...SOURCE_NODE_ARGS,
          canaryFleet,
          ...['--devices', String(devices), '--seed', '1', '--per-round', '10'],
          ...['--canaries', String(Math.min(each, canaries - k * each)), '--first', String(k * each)],
          ...extra,
          ...['--out', out],
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const stderr: string[] = [];
      child.stderr!.setEncoding('utf8').on('data', (t: string) => stderr.push(t));
      const killer = setTimeout(() => child.kill('SIGTERM'), limitMs);
      const [code] = (await once(child, 'exit')) as [number | null];
      clearTimeout(killer);
      // A run stopped at the limit still leaves the rounds it finished (written after each round).
      const report = existsSync(out)
        ? (JSON.parse(await readFile(out, 'utf8')) as { runs: CanaryFleetRun[]; forgedDevices?: number })
        : { runs: [] };
      await rm(out, { force: true });
      return { code, report, stderr: stderr.join('').slice(-400) };
    }),
  );
  const failed = results.find((r) => r.code !== 0);
  return {
    label,
    runs: results.flatMap((r) => r.report.runs),
    forgedDevices: results[0]?.report.forgedDevices ?? 0,
    wallMs: performance.now() - t0,
    ...(failed
      ? {
          error:
            failed.code === null
              ? `stopped at ${limitMs / 60_000} minutes`
              : `exited ${failed.code}: ${failed.stderr}`,
        }
      : {}),
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor((s.length - 1) / 2)]!;
};

/** Issue 19: false halts over at least 100 healthy canaries, each watched for at least 20 looks. */
function canaryFleetRows(
  healthy: CanaryFleetResult,
  forged: CanaryFleetResult,
): { rows: Row[]; goals: Goal[] } {
  const rows: Row[] = [];
  for (const r of [healthy, forged]) {
    const halted = r.runs.filter((x) => x.outcome === 'halted');
    const looks = r.runs.map((x) => x.verdictLooks);
    const ratios = r.runs.flatMap((x) => (x.latency ? [x.latency.ratio] : []));
    rows.push(
      plain(
        `10k, ${r.label}: false halts`,
        halted.length,
        `of ${r.runs.length}`,
        `looks with a verdict per canary: min ${Math.min(...looks)}, median ${median(looks)} (of ${r.runs[0]?.looks ?? '?'} looks); ` +
          `canary/control latency of the typical install at the end: median ${round(median(ratios), 3)}, max ${round(Math.max(...ratios), 3)}` +
          `; ${round(r.wallMs / 1000, 0)} s${r.error ? `; ${r.error}` : ''}` +
          (halted.length > 0 ? `; halted: ${halted.map((x) => x.haltReason).join(' | ')}` : ''),
      ),
    );
  }
  const looks = healthy.runs.map((x) => x.verdictLooks);
  const halted = healthy.runs.filter((x) => x.outcome === 'halted').length;
  const forgedHalted = forged.runs.filter((x) => x.outcome === 'halted').length;
  return {
    rows,
    goals: [
      {
        goal: '0 false halts in 100 healthy canaries on heterogeneous devices, each watched for at least 20 looks (10,000 devices)',
        met:
          healthy.runs.length === 0
            ? null
            : healthy.runs.length >= 100 && halted === 0 && Math.min(...looks) >= 20,
        detail: `${halted} of ${healthy.runs.length} halted; looks with a verdict per canary: min ${Math.min(...looks)}, median ${median(looks)}${healthy.error ? `; ${healthy.error}` : ''}`,
      },
      {
        goal: 'no healthy canary halted when 5% of the devices forge bad telemetry (10,000 devices, in-process canaries)',
        met: forged.runs.length === 0 ? null : forgedHalted === 0,
        detail: `${forgedHalted} of ${forged.runs.length} halted, ${forged.forgedDevices} devices forging${forged.error ? `; ${forged.error}` : ''}`,
      },
    ],
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

/**
 * Issue 20: the server's CPU per 1,000 acknowledged batches at most 0.8 s at every size, and
 * linear growth: per batch, the largest fleet within 1.25x of the smallest.
 */
function cpuGoal(results: SizeResult[]): Goal {
  const per = results
    .filter((r) => r.wallMs !== null && r.batches && r.serverCpuSec !== null)
    .map((r) => ({ devices: r.devices, cpu: (r.serverCpuSec! / r.batches!) * 1000 }));
  const growth = per.length >= 2 ? per.at(-1)!.cpu / per[0]!.cpu : null;
  return {
    goal: 'server CPU at most 0.8 s per 1,000 batches at every size, growing linearly (per batch, the largest fleet within 1.25x of the smallest)',
    met: per.length === 0 ? null : per.every((p) => p.cpu <= 0.8) && (growth === null || growth <= 1.25),
    detail:
      per.map((p) => `${p.devices.toLocaleString('en-US')} devices: ${round(p.cpu, 2)} CPU s`).join('; ') +
      (growth === null ? '' : `; per batch ${round(growth, 2)}x from the smallest to the largest fleet`),
  };
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
  // 100 healthy canaries at 10,000 devices, in-process (bench/fleet/canaries.ts), two processes.
  const canaryGoals: Goal[] = [];
  if (sizes.includes(10_000)) {
    ctx.log('fleet: 100 healthy canaries on 10,000 devices (in-process analysis)');
    const healthy = await runCanaryFleet('100 healthy canaries', 10_000, 100, 2, [], limitMs);
    ctx.log('fleet: 10 healthy canaries on 10,000 devices, 5% of them forging bad telemetry');
    const forged = await runCanaryFleet(
      'healthy canaries, 5% of devices forge bad telemetry',
      10_000,
      10,
      2,
      ['--forged-share', '0.05', '--forged', 'bad'],
      limitMs,
    );
    const c = canaryFleetRows(healthy, forged);
    rows.push(...c.rows);
    canaryGoals.push(...c.goals);
  }
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
      ...canaryGoals,
      {
        goal: 'report wall time and server CPU of a 10,000-device rollout, and their growth with fleet size',
        met: ten?.wallMs != null,
        detail:
          ten?.wallMs != null
            ? `10,000 devices: ${round(ten.wallMs / 1000, 1)} s wall, ${round(ten.serverCpuSec ?? Number.NaN, 1)} CPU s on the server${base ? ` (${round(ten.wallMs / base.wallMs!, 2)}x and ${round((ten.serverCpuSec ?? 0) / (base.serverCpuSec ?? Number.NaN), 2)}x the 1,000-device run)` : ''}`
            : `10,000 devices: ${ten?.error ?? 'not run'}`,
      },
      cpuGoal(results),
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
      'False halts over 100 healthy canaries at 10,000 devices: bench/fleet/canaries.ts, the same devices, check and send schedules and stages (1% -> 10% -> 50% -> 100%, 6 ticks each, a look after every tick) with the evidence rules (canary/evidence.ts armOf, caps) and verdict (canary/robust.ts, default policy) of the server, in-process: HTTP, signatures and SQLite are what simulate.ts runs for real, and 100 canaries through them would take hours on two cores.',
      'The simulator (its CLI: seven rollouts side by side, one healthy and four bad canaries (one bad on Firefox only), and a healthy and a bad one about which 5% of the devices forge telemetry) and its server (bench/fleet/server-process.ts) are two processes sharing 2 cores; wall time is the simulator’s own report, server CPU is read from /proc every 250 ms.',
      `Outcomes at 10,000 devices: ${results.find((r) => r.devices === 10_000)?.outcomes?.join('; ') ?? 'n/a'}.`,
      `Staging at 10,000 devices (schedule: the server's rollout schedule widens on its verdicts, holding for sizable segments without a verdict of their own, canary/schedule.ts; ticks: the simulator widens every 4 ticks), the shares each rollout was at: ${
        results
          .find((r) => r.devices === 10_000)
          ?.scenarios?.map(
            (s) =>
              `${s.scenario}: ${s.staging ?? 'ticks'}, ${(s.shares ?? s.stages).map((b) => `${b / 100}%`).join(' -> ')}`,
          )
          .join('; ') ?? 'n/a'
      }.`,
      ...(ctx.quick ? ['--quick: 100,000 devices not run.'] : []),
    ],
    raw: { results },
  };
};
