// Per-process CPU and memory from /proc (Linux), for a server process the benchmark spawned.
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** User + system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name (which may contain spaces).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Resident set size in MiB (VmRSS). */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) / 1024;
}

/** CPU time of each thread of a process so far, in ns (/proc/<pid>/task/<tid>/schedstat), by tid. */
export function threadCpuNs(pid: number): Map<number, { name: string; ns: number }> {
  const threads = new Map<number, { name: string; ns: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      threads.set(Number(tid), { name, ns });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return threads;
}

/** CPU ms each thread used between two threadCpuNs readings (threads started since count from 0). */
export function threadCpuDeltaMs(
  before: Map<number, { name: string; ns: number }>,
  after: Map<number, { name: string; ns: number }>,
): Array<{ tid: number; name: string; ms: number }> {
  return [...after].map(([tid, { name, ns }]) => ({
    tid,
    name,
    ms: (ns - (before.get(tid)?.ns ?? 0)) / 1e6,
  }));
}
