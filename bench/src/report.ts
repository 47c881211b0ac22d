// bench/RESULTS.md, regenerated from every bench/results/*.json after each run.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchResult, Row } from './result.ts';

export const ORDER = [
  'inference',
  'cold-start',
  'update-download',
  'update-server',
  'quantization',
  'soak',
  'fleet',
  'canary',
  'bundle-size',
  'fuzz',
  'storage',
  'real-sized',
  'publish',
];

const fmt = (x: number | undefined | null) => {
  if (x === undefined) return '';
  if (x === null) return 'n/a'; // NaN in JSON
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 1000) return x.toLocaleString('en-US', { maximumFractionDigits: 0 });
  if (abs >= 10) return x.toFixed(1);
  if (abs >= 0.1) return x.toFixed(3);
  return x.toPrecision(3);
};

/** Table cells: a '|' in text would end the cell. */
const cell = (text: string) => text.replace(/\|/g, '\\|');

function rowLine(r: Row): string {
  const baseline = r.baseline ? `${fmt(r.baseline.value)} ${r.unit} (${r.baseline.label})` : '';
  const ratio = r.ratio === undefined ? '' : r.ratio === null ? 'n/a' : `**${fmt(r.ratio)}x**`;
  return `| ${cell(r.metric)} | ${fmt(r.value)} ${r.unit} | ${cell(baseline)} | ${ratio} | ${cell(r.note ?? '')} |`;
}

export async function loadResults(dir: string): Promise<BenchResult[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
  const results = await Promise.all(
    files.map(async (f) => JSON.parse(await readFile(join(dir, f), 'utf8')) as BenchResult),
  );
  const rank = (n: string) => (ORDER.includes(n) ? ORDER.indexOf(n) : ORDER.length);
  return results.sort((a, b) => rank(a.name) - rank(b.name));
}

export function renderResults(results: BenchResult[], command: string, header: string[]): string {
  const out: string[] = ['# Benchmark results', '', ...header, ''];
  const commands = new Map<string, string[]>();
  for (const r of results) {
    const c = (r as BenchResult & { command?: string }).command ?? command;
    commands.set(c, [...(commands.get(c) ?? []), r.name]);
  }
  out.push('Produced by (each section says when it ran; see bench/README.md for the method):', '');
  for (const [c, names] of commands) out.push(`- \`${c}\` (repository root): ${names.join(', ')}`);
  out.push('');
  const machines = new Set(
    results.map(
      (r) =>
        `${r.machine.cpuModel}, ${r.machine.cores} cores, ${r.machine.totalMemGiB} GiB, Node ${r.machine.node}`,
    ),
  );
  const browsers = new Set(results.map((r) => r.machine.browser).filter(Boolean));
  out.push(`Machine: ${[...machines].join('; ')}. Browser: ${[...browsers].join('; ') || 'n/a'}.`);
  out.push(
    'The machine is shared with other work (2 cores): absolute numbers are noise, ratios to the baseline measured in the same run are the result.',
    '',
  );
  out.push('## Goals', '', '| benchmark | goal | met | detail |', '| --- | --- | --- | --- |');
  for (const r of results) {
    if (r.pending && !r.goals.length) out.push(`| ${r.name} | — | pending | ${cell(r.pending)} |`);
    for (const g of r.goals) {
      out.push(
        `| ${r.name} | ${cell(g.goal)} | ${g.met === null ? 'pending' : g.met ? 'yes' : '**no**'} | ${cell(g.detail)} |`,
      );
    }
  }
  out.push('');
  for (const r of results) {
    out.push(`## ${r.title}`, '');
    out.push(
      `\`${r.name}\` · ${r.startedAt} · ${Math.round(r.durationMs / 1000)} s · ${r.quick ? '**--quick**' : 'full'} · load avg ${r.machine.loadAvg1}${r.machine.browser ? ` · ${r.machine.browser}` : ''}`,
      '',
    );
    if (r.pending) out.push(`**Pending:** ${r.pending}`, '');
    const settings = Object.entries(r.settings).map(
      ([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`,
    );
    if (settings.length) out.push(`Settings: ${settings.join(', ')}.`, '');
    if (r.rows.length) {
      out.push(
        '| metric | value (median) | baseline (same run) | ratio | note |',
        '| --- | --- | --- | --- | --- |',
      );
      for (const row of r.rows) out.push(rowLine(row));
      out.push('');
    }
    for (const note of r.notes ?? []) out.push(`- ${note}`);
    if (r.notes?.length) out.push('');
  }
  return `${out.join('\n')}\n`;
}

export async function writeResultsMarkdown(
  resultsDir: string,
  target: string,
  command: string,
  header: string[],
) {
  await writeFile(target, renderResults(await loadResults(resultsDir), command, header));
}
