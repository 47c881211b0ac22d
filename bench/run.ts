// npm run bench [-- --only <name>[,<name>]] [--quick] [--soak-seconds N] [--sizes 2,200,500] [--reload-mb 1024] [--reps 3] [--fleet-devices 10000] [--parts manifest,chunk,telemetry]
// Runs each benchmark, writes bench/results/<name>.json and regenerates bench/RESULTS.md.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machine } from './src/machine.ts';
import { ORDER, writeResultsMarkdown } from './src/report.ts';
import type { Benchmark, BenchResult } from './src/result.ts';

const here = dirname(fileURLToPath(import.meta.url));
const resultsDir = join(here, 'results');

const benchmarks: Record<string, () => Promise<Benchmark>> = {
  inference: async () => (await import('./src/inference.ts')).inference,
  'cold-start': async () => (await import('./src/cold-start.ts')).coldStart,
  'update-download': async () => (await import('./src/update-download.ts')).updateDownload,
  'update-server': async () => (await import('./src/update-server.ts')).updateServer,
  quantization: async () => (await import('./src/quantization.ts')).quantization,
  soak: async () => (await import('./src/soak.ts')).soak,
  fleet: async () => (await import('./src/fleet-scale.ts')).fleet,
  canary: async () => (await import('./src/canary.ts')).canary,
  'bundle-size': async () => (await import('./src/bundle-size.ts')).bundleSize,
  fuzz: async () => (await import('./src/fuzz.ts')).fuzz,
  storage: async () => (await import('./src/storage.ts')).storage,
  'real-sized': async () => (await import('./src/real-sized.ts')).realSized,
  publish: async () => (await import('./src/publish.ts')).publish,
};

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'soak-seconds': { type: 'string' },
    /** real-sized: model sizes in MB, e.g. 2,200,500 */
    sizes: { type: 'string' },
    /** real-sized: size of the reload-at-half-way model in MB (0: skip) */
    'reload-mb': { type: 'string' },
    /** real-sized: repetitions per size (default 5, --quick 3) */
    reps: { type: 'string' },
    /** fleet: fleet sizes in devices, e.g. 10000 */
    'fleet-devices': { type: 'string' },
    /** update-server: manifest,chunk,telemetry (default all) */
    parts: { type: 'string' },
  },
});
const selected = values.only ? values.only.split(',').map((s) => s.trim()) : ORDER;
for (const name of selected)
  if (!benchmarks[name]) throw new Error(`no benchmark named ${name}; have ${ORDER.join(', ')}`);
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

await mkdir(resultsDir, { recursive: true });
let failed = 0;
for (const name of selected) {
  const started = new Date();
  const t0 = performance.now();
  const log = (message: string) => process.stderr.write(`[${name}] ${message}\n`);
  log(values.quick ? 'starting (--quick)' : 'starting');
  const startMachine = machine();
  let result: BenchResult;
  try {
    const run = await (await benchmarks[name]!())({
      quick: values.quick ?? false,
      soakSeconds: values['soak-seconds'] ? Number(values['soak-seconds']) : undefined,
      sizes: values.sizes ? values.sizes.split(',').map(Number) : undefined,
      reloadMb: values['reload-mb'] !== undefined ? Number(values['reload-mb']) : undefined,
      reps: values.reps ? Number(values.reps) : undefined,
      fleetDevices: values['fleet-devices'] ? values['fleet-devices'].split(',').map(Number) : undefined,
      parts: values.parts ? values.parts.split(',').map((s) => s.trim()) : undefined,
      log,
    });
    const { browser, ...rest } = run;
    result = {
      ...rest,
      quick: values.quick ?? false,
      startedAt: started.toISOString(),
      durationMs: Math.round(performance.now() - t0),
      machine: { ...startMachine, ...(browser ? { browser } : {}) },
    };
  } catch (error) {
    failed += 1;
    log(`failed: ${(error as Error).stack ?? error}`);
    result = {
      name,
      title: name,
      startedAt: started.toISOString(),
      durationMs: Math.round(performance.now() - t0),
      quick: values.quick ?? false,
      machine: startMachine,
      settings: {},
      rows: [],
      goals: [],
      pending: `the benchmark failed: ${(error as Error).message}`,
    };
  }
  await writeFile(
    join(resultsDir, `${result.name}.json`),
    `${JSON.stringify({ ...result, command }, null, 2)}\n`,
  );
  log(`done in ${Math.round(result.durationMs / 1000)} s`);
  // After each benchmark, so an interrupted run still leaves a consistent report.
  await writeResultsMarkdown(resultsDir, join(here, 'RESULTS.md'), command, []);
}
process.stderr.write(`wrote ${join(resultsDir, '*.json')} and bench/RESULTS.md\n`);
process.exit(failed ? 1 : 0);
