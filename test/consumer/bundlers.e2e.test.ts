// The runtime as a web developer adopts it: @edgeship/runtime installed from its `npm pack`
// tarball into a project outside this repository, the README's quick start copied as written,
// built by Vite, webpack 5 and esbuild (and served with an import map, no bundler), then run in
// Chromium against a real update server: first load, run, reload with the update server
// unreachable, run again from IndexedDB.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { transform } from 'esbuild';
import * as ort from 'onnxruntime-node';
import { type Browser, chromium } from 'playwright-core';
import sirv from 'sirv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumArgs } from '../../vitest.config.ts';
import { SILERO_CONTRACT, sileroBytes } from '../support/models.ts';
import { cleanEnv, installConsumer } from '../support/packages.ts';
import { makeRelease, startTestServer, type TestServer } from '../support/server.ts';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');
const PLACEHOLDER_SERVER = 'https://models.example.com';

/** The README's quick start, exactly as a reader copies it. */
async function readmeQuickStart(): Promise<{ app: string; viteConfig: string }> {
  const readme = await readFile(join(REPO, 'runtime/README.md'), 'utf8');
  const block = (after: string) => {
    const start = readme.indexOf('```ts\n', readme.indexOf(after));
    return readme.slice(start + 6, readme.indexOf('```\n', start + 6));
  };
  const app = block('<!-- quickstart:start -->');
  const viteConfig = block('| **no bundler** |');
  expect(app, 'the README has a quick start').toContain('createRuntime');
  expect(viteConfig, 'the README has a Vite config').toContain('@edgeship/runtime/vite');
  return { app, viteConfig };
}

let server: TestServer;
let dir: string;
let browser: Browser;
let expected: number;
let quickStart: { app: string; viteConfig: string };

async function sh(command: string, args: string[]): Promise<void> {
  try {
    await run(command, args, { cwd: dir, env: cleanEnv(), maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed:\n${stdout ?? ''}\n${stderr ?? ''}`);
  }
}

/** The app's tsconfig: strict, as current Vite templates have it. */
const APP_TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'ESNext',
    moduleResolution: 'bundler',
    lib: ['ES2023', 'DOM', 'DOM.Iterable'],
    strict: true,
    noUncheckedIndexedAccess: true,
    erasableSyntaxOnly: true,
    verbatimModuleSyntax: true,
    resolveJsonModule: true,
    skipLibCheck: false,
    noEmit: true,
  },
  include: ['src'],
};

beforeAll(async () => {
  quickStart = await readmeQuickStart();
  server = await startTestServer();
  const model = await sileroBytes();
  const signed = await makeRelease(server.publisherKey, model, {
    model: 'vad',
    version: '1.0.0',
    ...SILERO_CONTRACT,
    quantization: { method: 'none' },
  });
  await server.publisher.uploadRelease(signed, new Map([['model.onnx', model]]));
  await server.publisher.registerRelease({ release: signed });
  await server.operator.promoteRelease('demo-app', 'stable', 'vad', '1.0.0');

  // What the quick start should print: the same model and inputs on onnxruntime-node.
  const session = await ort.InferenceSession.create(model);
  const out = await session.run({
    input: new ort.Tensor('float32', new Float32Array(512), [1, 512]),
    state: new ort.Tensor('float32', new Float32Array(256), [2, 1, 128]),
    sr: new ort.Tensor('int64', BigInt64Array.of(16000n), []),
  });
  expected = (out.output!.data as Float32Array)[0]!;
  await session.release();

  dir = await mkdtemp(join(tmpdir(), 'edgeship-consumer-'));
  await installConsumer(dir, [
    '@edgeship/runtime',
    'vite@8.3.8',
    'webpack@5.113.0',
    'webpack-cli@7.3.1',
    'ts-loader@9.6.2',
    'typescript@5.9.3',
    'esbuild@0.28.2',
  ]);
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src/main.ts'), quickStart.app.replace(PLACEHOLDER_SERVER, server.server.url));
  await writeFile(join(dir, 'src/root.pub.json'), JSON.stringify(server.server.trustedRoot));
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(APP_TSCONFIG, null, 2));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: chromiumArgs,
  });
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const page = (script: string, head = '') =>
  `<!doctype html><html><head><meta charset="utf-8">${head}</head><body><script type="module" src="${script}"></script></body></html>`;

/** Each way of building the app: its output folder, served as the site's root. */
const builds: Record<string, () => Promise<string>> = {
  async vite() {
    await writeFile(join(dir, 'vite.config.ts'), quickStart.viteConfig);
    await writeFile(join(dir, 'index.html'), page('/src/main.ts'));
    await sh('npx', ['vite', 'build', '--outDir', 'dist-vite', '--emptyOutDir']);
    return join(dir, 'dist-vite');
  },
  async webpack() {
    await writeFile(
      join(dir, 'webpack.config.mjs'),
      `export default {
  mode: 'production',
  entry: './src/main.ts',
  output: { path: new URL('./dist-webpack', import.meta.url).pathname, clean: true },
  resolve: { extensions: ['.ts', '.js'] },
  module: { rules: [{ test: /\\.ts$/, loader: 'ts-loader', options: { transpileOnly: true } }] },
  performance: { hints: false },
};\n`,
    );
    await sh('npx', ['webpack']);
    await writeFile(join(dir, 'dist-webpack/index.html'), page('./main.js'));
    return join(dir, 'dist-webpack');
  },
  async esbuild() {
    const out = join(dir, 'dist-esbuild');
    await sh('npx', ['esbuild', 'src/main.ts', '--bundle', '--format=esm', '--minify', `--outdir=${out}`]);
    // The README's copy step for esbuild.
    await sh('cp', ['-r', 'node_modules/@edgeship/runtime/dist/worker', `${out}/worker`]);
    await writeFile(join(out, 'index.html'), page('./main.js'));
    return out;
  },
  async 'import map'() {
    // No bundler: the quick start with its types stripped, the packages served from node_modules.
    const { code } = await transform(await readFile(join(dir, 'src/main.ts'), 'utf8'), { loader: 'ts' });
    await mkdir(join(dir, 'app'), { recursive: true });
    await writeFile(join(dir, 'app/main.js'), code);
    await cp(join(dir, 'src/root.pub.json'), join(dir, 'app/root.pub.json'));
    const readme = await readFile(join(REPO, 'runtime/README.md'), 'utf8');
    const importMap = readme.match(/<script type="importmap">[\s\S]*?<\/script>/)![0];
    await writeFile(join(dir, 'index.html'), page('/app/main.js', importMap));
    return dir;
  },
};

/** A plain static server with cross-origin isolation, as production would send it. */
async function serveStatic(root: string): Promise<{ url: string; close(): Promise<void> }> {
  const files = sirv(root, { dev: true, dotfiles: false });
  const http: Server = createServer((req, res) => {
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    files(req, res, () => {
      res.statusCode = 404;
      res.end('not found');
    });
  });
  await new Promise<void>((done) => http.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    close: () => new Promise((done) => http.close(() => done())),
  };
}

async function wasmFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true });
  return entries.filter((name) => name.endsWith('.wasm'));
}

describe('the README quick start, installed from the tarball', () => {
  it("type-checks with the app's own strict tsc (erasableSyntaxOnly)", async () => {
    await sh('npx', ['tsc', '-p', '.']);
  }, 120_000);

  for (const [name, build] of Object.entries(builds)) {
    it(`${name}: first load runs, and a reload with the update server unreachable runs from storage`, async () => {
      const root = await build();
      if (name !== 'import map') {
        // One WASM file in the build (ORT's, named by content hash): the one the worker fetches.
        expect(await wasmFiles(root)).toHaveLength(1);
      }
      const site = await serveStatic(root);
      const context = await browser.newContext();
      try {
        const requests: string[] = [];
        context.on('request', (request) => requests.push(request.url()));
        const tab = await context.newPage();
        const errors: string[] = [];
        tab.on('pageerror', (error) => errors.push(String(error)));
        const printed = () =>
          tab
            .waitForEvent('console', {
              predicate: (message) => message.text().startsWith('speech probability'),
              timeout: 180_000,
            })
            .then((message) => Number(message.text().split(' ').at(-1)));

        const first = printed();
        await tab.goto(`${site.url}/`);
        expect(await first, `page errors: ${errors.join('; ')}`).toBeCloseTo(expected, 5);
        expect(requests.some((url) => url.startsWith(server.server.url) && url.includes('/chunks/'))).toBe(
          true,
        );
        // TF.js is a chunk of its own, never fetched by an app that runs an ONNX model.
        expect(requests.filter((url) => /tfjs/i.test(url))).toEqual([]);
        // Every WASM fetch (the worker's, and each autotune probe's) is of that one file.
        const wasmRequests = requests.filter((url) => new URL(url).pathname.endsWith('.wasm'));
        expect(wasmRequests.length).toBeGreaterThan(0);
        if (name !== 'import map') {
          const [wasm] = await wasmFiles(root);
          for (const url of wasmRequests) expect(url).toBe(`${site.url}/${wasm}`);
        }

        await context.route(`${server.server.url}/**`, (route) => route.abort('internetdisconnected'));
        const again = printed();
        await tab.reload();
        expect(await again, `page errors: ${errors.join('; ')}`).toBeCloseTo(expected, 5);
      } finally {
        await context.close();
        await site.close();
      }
    }, 400_000);
  }
});
