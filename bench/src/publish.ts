// `edgeship publish` of a generated 500 MB ONNX model (external data: the graph plus a 500 MB
// model.onnx.data, as models this size ship) to a real update server, each in its own process:
// peak RSS of the CLI, and the server's RSS before, at its peak and after the upload. Each rep
// starts a fresh server (a server that has the chunks would receive nothing). Also the manifest's
// size for a 2 MB and a 200 MB model, schema 2 (releases by hash) against schema 1 (inline).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  canonicalJson,
  describeFile,
  type Manifest,
  seededBytes,
  signManifest,
  signRelease,
} from '@edgeship/protocol';
import { bigModelContract, bigOnnxModel } from '../../test/support/big-model.ts';
import { SOURCE_NODE_ARGS } from '../../test/support/node-args.ts';
import { BENCH_SPAWN, type ListeningLine, spawnServer } from '../../test/support/server-process.ts';
import { createTestTrust, testManifest, testRelease } from '../../test/support/trust.ts';
import { rssMiB } from './proc.ts';
import type { Benchmark, Goal, Row } from './result.ts';
import { median } from './stats.ts';

const REPO = resolve(import.meta.dirname, '../..');
const MiB = 1024 * 1024;

interface Rep {
  cliPeakMiB: number;
  serverIdleMiB: number;
  serverPeakMiB: number;
  serverAfterMiB: number;
  seconds: number;
}

/** Samples a process's RSS every 50 ms until stopped; returns the peak. */
function sampleRss(pid: number): { peak: () => number; stop: () => void } {
  let peak = 0;
  const tick = () => {
    try {
      peak = Math.max(peak, rssMiB(pid));
    } catch {
      // the process has exited
    }
  };
  tick();
  const timer = setInterval(tick, 50);
  return { peak: () => peak, stop: () => clearInterval(timer) };
}

async function publishOnce(dir: string, log: (m: string) => void): Promise<Rep> {
  const server = await spawnServer<ListeningLine & { pid: number; token: string; keyFile: string }>([], {
    ...BENCH_SPAWN,
    script: join(import.meta.dirname, 'servers/publish-target-child.ts'),
    nodeArgs: SOURCE_NODE_ARGS,
  });
  try {
    await sleep(2000); // start-up allocations settle before "idle" is read
    const serverIdleMiB = rssMiB(server.info.pid);
    const serverRss = sampleRss(server.info.pid);
    const started = performance.now();
    const cli = spawn(
      process.execPath,
      [
        join(REPO, 'cli/bin/edgeship.mjs'),
        'publish',
        join(dir, 'model.onnx'),
        '--name',
        'big',
        '--version',
        '1.0.0',
        '--contract',
        join(dir, 'contract.json'),
        '--publisher-key',
        server.info.keyFile,
        '--server',
        server.info.url,
        '--token',
        server.info.token,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    cli.stderr!.on('data', (d) => {
      stderr += String(d);
    });
    const cliRss = sampleRss(cli.pid!);
    const [code] = (await once(cli, 'exit')) as [number | null];
    cliRss.stop();
    const seconds = (performance.now() - started) / 1000;
    if (code !== 0) throw new Error(`edgeship publish exited with ${code}: ${stderr.slice(-2000)}`);
    // "Afterwards": the server has answered the last request; give it the time a quiet server has.
    await sleep(5000);
    serverRss.stop();
    const rep = {
      cliPeakMiB: cliRss.peak(),
      serverIdleMiB,
      serverPeakMiB: serverRss.peak(),
      serverAfterMiB: rssMiB(server.info.pid),
      seconds,
    };
    log(JSON.stringify(rep));
    return rep;
  } finally {
    await server.stop();
  }
}

/** Canonical manifest bytes for one model of `bytes`, in schema 2 and as schema 1 carried it. */
async function manifestSizes(size: number): Promise<{ schema2: number; schema1: number; chunks: number }> {
  const trust = await createTestTrust();
  const file = await describeFile('model.onnx', seededBytes(size, 9));
  const release = await testRelease({}, { files: [file] });
  const signed = await signRelease(release, [trust.publisher]);
  const manifest = await testManifest(signed);
  const schema2 = canonicalJson(await signManifest(manifest, [trust.online], trust.keySet)).length;
  const { schemaVersion: _, ...older } = manifest;
  const inline = { ...older, models: [{ ...older.models[0]!, releases: [signed] }] };
  const schema1 = canonicalJson(
    await signManifest(inline as unknown as Manifest, [trust.online], trust.keySet),
  ).length;
  return { schema2, schema1, chunks: file.chunks.length };
}

export const publish: Benchmark = async (ctx) => {
  const reps = ctx.quick ? 1 : 5;
  const width = ctx.quick ? 5000 : 11_180; // 4·width² bytes: 100 MB, or 500 MB
  const dir = await mkdtemp(join(tmpdir(), 'edgeship-bench-publish-'));
  const rows: Row[] = [];
  const goals: Goal[] = [];
  try {
    ctx.log(`generating a ${Math.round((4 * width * width) / 1e6)} MB external-data model`);
    let modelBytes = 0;
    {
      const files = bigOnnxModel({ width, external: true });
      for (const [path, bytes] of files) {
        await writeFile(join(dir, path), bytes);
        modelBytes += bytes.length;
      }
    }
    await writeFile(join(dir, 'contract.json'), JSON.stringify(bigModelContract(width)));
    const runs: Rep[] = [];
    for (let i = 0; i < reps; i++) {
      ctx.log(`publish ${i + 1}/${reps}`);
      runs.push(await publishOnce(dir, ctx.log));
    }
    const m = (pick: (r: Rep) => number) => median(runs.map(pick));
    const spread = (pick: (r: Rep) => number) =>
      `min ${Math.round(Math.min(...runs.map(pick)))}, max ${Math.round(Math.max(...runs.map(pick)))}`;
    const modelMiB = modelBytes / MiB;
    const cliPeak = m((r) => r.cliPeakMiB);
    const retained = m((r) => r.serverAfterMiB - r.serverIdleMiB);
    rows.push(
      {
        metric: 'edgeship publish, peak RSS',
        value: Math.round(cliPeak),
        unit: 'MiB',
        baseline: { label: 'model size', value: Math.round(modelMiB) },
        ratio: cliPeak / modelMiB,
        note: spread((r) => r.cliPeakMiB),
      },
      {
        metric: 'update server, peak RSS during the upload',
        value: Math.round(m((r) => r.serverPeakMiB)),
        unit: 'MiB',
        baseline: { label: 'server idle', value: Math.round(m((r) => r.serverIdleMiB)) },
        ratio: m((r) => r.serverPeakMiB / r.serverIdleMiB),
        note: spread((r) => r.serverPeakMiB),
      },
      {
        metric: 'update server, RSS 5 s after the publish, above idle',
        value: Math.round(retained),
        unit: 'MiB',
        note: spread((r) => r.serverAfterMiB - r.serverIdleMiB),
      },
      { metric: 'publish wall time', value: Math.round(m((r) => r.seconds) * 10) / 10, unit: 's' },
    );
    goals.push(
      {
        goal: `publishing a ${Math.round(modelBytes / 1e6)} MB model peaks under 300 MB RSS in the CLI`,
        met: cliPeak * MiB < 300e6,
        detail: `${Math.round(cliPeak)} MiB (median of ${reps})`,
      },
      {
        goal: "the server's RSS returns to within 50 MB of idle afterwards",
        met: retained * MiB <= 50e6,
        detail: `${Math.round(retained)} MiB above idle (median of ${reps})`,
      },
    );
    for (const size of [2e6, 200e6]) {
      const sizes = await manifestSizes(size);
      rows.push({
        metric: `manifest for one ${size / 1e6} MB model (${sizes.chunks} chunks)`,
        value: sizes.schema2,
        unit: 'bytes',
        baseline: { label: 'schema 1, releases inline', value: sizes.schema1 },
        ratio: sizes.schema2 / sizes.schema1,
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return {
    name: 'publish',
    title: 'Publishing a large model: CLI and server memory; manifest size',
    settings: { reps, modelWidth: width },
    rows,
    goals,
  };
};
