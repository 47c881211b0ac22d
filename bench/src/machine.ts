import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import type { Machine } from './result.ts';

export function machine(browser?: string): Machine {
  const cpu = cpus();
  return {
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    totalMemGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${platform()} ${release()}`,
    loadAvg1: Math.round(loadavg()[0]! * 100) / 100,
    ...(browser ? { browser } : {}),
  };
}
