// Development loop for the per-call overhead: the paired measurements of the inference bench only.
//   node --conditions=edgeship-source --import tsx bench/pairs-dev.ts [cpuPairs] [cpuFrames] [wallPairs] [wallBlock]
import { openBenchPage, startModelServer } from './src/browser/harness.ts';
import { cpuPairs, rendererThreads } from './src/inference-pairs.ts';
import { bootstrap, median, percentile, trimmedMean } from './src/stats.ts';

const [cp = 20, cf = 200, wp = 500, wb = 4] = process.argv.slice(2).map(Number);
const models = await startModelServer();
const session = await openBenchPage(models);
const fmt = (x: number) => (x * 1000).toFixed(1);
const show = (label: string, d: number[]) => {
  const ci = bootstrap(d);
  const ti = bootstrap(d, { statistic: trimmedMean, resamples: 500 });
  console.log(
    `${label}: median ${fmt(median(d))} µs [95% ${fmt(ci.low)}, ${fmt(ci.high)}] IQ mean ${fmt(trimmedMean(d))} [${fmt(ti.low)}, ${fmt(ti.high)}] p10–p90 ${fmt(percentile(d, 10))}–${fmt(percentile(d, 90))} n=${d.length}`,
  );
};
try {
  await session.call('prepareInference', `dev-${Date.now()}`, 50);
  const cpu = await cpuPairs(session, cp, cf);
  console.log(
    rendererThreads(cpu.pid)
      .filter((t) => t.ms > 100)
      .map((t) => `${t.name}:${t.tid === cpu.pid ? 'main' : ''}${t.ms.toFixed(0)}`)
      .join(' '),
  );
  const diff = (key: 'cpuMsPerFrame' | 'mainMsPerFrame' | 'workerMsPerFrame' | 'wallMsPerFrame') =>
    cpu.runtime.map((r, i) => r[key] - cpu.raw[i]![key]);
  console.log(
    `raw: cpu ${fmt(median(cpu.raw.map((b) => b.cpuMsPerFrame)))} main ${fmt(median(cpu.raw.map((b) => b.mainMsPerFrame)))} worker ${fmt(median(cpu.raw.map((b) => b.workerMsPerFrame)))} wall ${fmt(median(cpu.raw.map((b) => b.wallMsPerFrame)))} µs/frame`,
  );
  show('cpu all threads', diff('cpuMsPerFrame'));
  show('cpu main thread', diff('mainMsPerFrame'));
  show('cpu worker     ', diff('workerMsPerFrame'));
  show(`wall ${cf}-frame blocks`, diff('wallMsPerFrame'));
  const wall = await session.call('inferencePaired', wp, wb);
  show(
    `wall ${wb}-frame blocks`,
    wall.runtimeMs.map((v, i) => v - wall.rawMs[i]!),
  );
} finally {
  await session.close();
  await models.server.stop();
}
