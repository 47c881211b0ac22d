// What an app pays to embed the runtime: the README's quick start and a bare onnxruntime-web
// worker (the baseline), both built by Vite in one consumer project installed from this run's
// `npm pack` tarballs, compared gzip for gzip. Sizes are deterministic: one build each.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { cleanEnv, installConsumer } from '../../test/support/packages.ts';
import type { Benchmark, Goal, Row } from './result.ts';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');

const gzip = (bytes: Uint8Array) => gzipSync(bytes, { level: 9 }).length;
const kB = (bytes: number) => Math.round(bytes / 10.24) / 100;

/** The README's quick start block. */
async function quickStart(): Promise<string> {
  const readme = await readFile(join(REPO, 'runtime/README.md'), 'utf8');
  const start = readme.indexOf('```ts\n', readme.indexOf('<!-- quickstart:start -->')) + 6;
  return readme.slice(start, readme.indexOf('```\n', start));
}

// The baseline: what an app that runs ORT in a worker by hand ships (ORT's JSEP build, the
// same one the runtime bundles, and the same session call).
const BARE_ORT_WORKER = `import * as ort from 'onnxruntime-web';
self.onmessage = async (event) => {
  const session = await ort.InferenceSession.create(event.data);
  self.postMessage(session.inputNames);
};
`;
const BARE_ORT_MAIN = `const worker = new Worker(new URL('./ort-worker.js', import.meta.url), { type: 'module' });
worker.postMessage(new Uint8Array(0));
`;

interface Built {
  files: Array<{ name: string; bytes: number; gzip: number }>;
}

async function viteBuild(dir: string, outDir: string): Promise<Built> {
  await run('npx', ['vite', 'build', '--outDir', outDir, '--emptyOutDir'], {
    cwd: dir,
    env: cleanEnv(),
    maxBuffer: 64 * 1024 * 1024,
  });
  const names = await readdir(join(dir, outDir), { recursive: true });
  const files = [];
  for (const name of names) {
    if (!/\.(m?js|wasm)$/.test(name)) continue;
    const bytes = await readFile(join(dir, outDir, name));
    files.push({ name, bytes: bytes.length, gzip: gzip(bytes) });
  }
  return { files };
}

const pick = (built: Built, pattern: RegExp) => {
  const found = built.files.filter((f) => pattern.test(f.name));
  if (found.length !== 1)
    throw new Error(`expected one file like ${pattern}, got ${found.map((f) => f.name)}`);
  return found[0]!;
};

export const bundleSize: Benchmark = async (ctx) => {
  const dir = await mkdtemp(join(tmpdir(), 'edgeship-bundle-size-'));
  try {
    ctx.log('installing the tarballs and Vite');
    await installConsumer(dir, ['@edgeship/runtime', 'onnxruntime-web@1.30.0', 'vite@8.3.8']);
    await mkdir(join(dir, 'src'));
    await writeFile(join(dir, 'src/main.ts'), await quickStart());
    await writeFile(join(dir, 'src/root.pub.json'), JSON.stringify({ keys: [], threshold: 1 }));
    await writeFile(
      join(dir, 'vite.config.ts'),
      "import { edgeship } from '@edgeship/runtime/vite';\nexport default { plugins: [edgeship()] };\n",
    );
    await writeFile(join(dir, 'index.html'), '<script type="module" src="/src/main.ts"></script>\n');
    ctx.log('building the quick start');
    const app = await viteBuild(dir, 'dist-app');

    await writeFile(join(dir, 'src/ort-worker.js'), BARE_ORT_WORKER);
    await writeFile(join(dir, 'src/bare.js'), BARE_ORT_MAIN);
    await writeFile(join(dir, 'index.html'), '<script type="module" src="/src/bare.js"></script>\n');
    await writeFile(join(dir, 'vite.config.ts'), "export default { worker: { format: 'es' } };\n");
    ctx.log('building a bare onnxruntime-web worker');
    const bare = await viteBuild(dir, 'dist-bare');

    const entry = pick(app, /^assets\/index-.*\.js$/);
    const worker = pick(app, /^assets\/worker-.*\.js$/);
    const tfjs = pick(app, /tfjs-engine.*\.js$/);
    const glue = pick(app, /ort-wasm-simd-threaded\.jsep.*\.mjs$/);
    const ortWorker = pick(bare, /^assets\/ort-worker-.*\.js$/);
    const appWasm = app.files.filter((f) => f.name.endsWith('.wasm'));
    const bareWasm = bare.files.filter((f) => f.name.endsWith('.wasm'));
    // The bare ORT bundle embeds its WASM glue; the runtime loads it as a file of its own.
    const bareGlue = bare.files.find((f) => /jsep.*\.mjs$/.test(f.name));
    const baselineJs = ortWorker.gzip + (bareGlue?.gzip ?? 0);
    const workerJs = worker.gzip + glue.gzip;

    const rows: Row[] = [
      {
        metric: 'main-thread entry (quick start + runtime + comlink), gzip',
        value: kB(entry.gzip),
        unit: 'kB',
        note: `${kB(entry.bytes)} kB minified`,
      },
      {
        metric: 'ONNX-only worker JS fetched (worker + ORT WASM glue), gzip',
        value: kB(workerJs),
        unit: 'kB',
        baseline: { label: "a bare onnxruntime-web worker's JS, same build", value: kB(baselineJs) },
        ratio: Math.round((workerJs / baselineJs) * 1000) / 1000,
        note: `worker ${kB(worker.gzip)} kB + glue ${kB(glue.gzip)} kB`,
      },
      {
        metric: 'TF.js chunk, emitted but fetched only when a tfjs release loads, gzip',
        value: kB(tfjs.gzip),
        unit: 'kB',
        note: 'the consumer test checks no tfjs URL is requested by an ONNX app',
      },
      {
        metric: 'WASM files in the build',
        value: appWasm.length,
        unit: 'files',
        baseline: { label: 'bare onnxruntime-web worker', value: bareWasm.length },
        ratio: appWasm.length / Math.max(1, bareWasm.length),
        note: appWasm.map((f) => `${f.name} ${kB(f.bytes)} kB`).join(', '),
      },
    ];
    const goals: Goal[] = [
      {
        goal: 'main-thread entry at most 15 kB gzip',
        met: entry.gzip <= 15 * 1024,
        detail: `${kB(entry.gzip)} kB`,
      },
      {
        goal: "an ONNX-only worker at most 1.1x onnxruntime-web's own JS (gzip)",
        met: workerJs <= 1.1 * baselineJs,
        detail: `${rows[1]!.ratio}x (${kB(workerJs)} kB vs ${kB(baselineJs)} kB)`,
      },
      {
        goal: 'one WASM copy in the build',
        met: appWasm.length === 1,
        detail: `${appWasm.length} WASM file(s)`,
      },
    ];
    return {
      name: 'bundle-size',
      title: 'Bundle size: the quick start built by Vite from the npm tarballs',
      settings: { bundler: 'vite@8.3.8', gzip: 'zlib level 9' },
      rows,
      goals,
      raw: { app: app.files, bare: bare.files },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};
