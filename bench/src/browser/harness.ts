// What the browser benchmarks share: the bench pages built by Vite (production build, so module
// loading is what an app ships), a static server for them, headless Chromium, and a real update
// server with Silero VAD published.
import { createReadStream, rmSync } from 'node:fs';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeFile, type SignedRelease } from '@edgeship/protocol';
import { type Browser, chromium, type Page } from 'playwright-core';
import { build, defaultClientConditions } from 'vite';
import { SILERO_CONTRACT, sileroBytes, sileroPath, withDocString } from '../../../test/support/models.ts';
import { makeRelease, startTestServer, type TestServer } from '../../../test/support/server.ts';
import type { BenchPage, PageSetup } from '../../pages/main.ts';

const here = dirname(fileURLToPath(import.meta.url));
const pagesDir = resolve(here, '../../pages');
const ortDist = resolve(here, '../../../node_modules/onnxruntime-web/dist');
/** The project's tfjs model (demo-pwa/models/tone: layers model.json + weights.bin). */
export const toneDir = resolve(here, '../../../demo-pwa/models/tone');

/** The flags the test suite uses for Debian's Chromium on a machine with no outside network. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.map': 'application/json',
};

let built: Promise<string> | undefined;

/** Built once per runner process and removed when it exits. */
export function buildPages(): Promise<string> {
  built ??= buildPagesNow().then((dir) => {
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  });
  return built;
}

async function buildPagesNow(): Promise<string> {
  const outDir = await mkdtemp(join(tmpdir(), 'edgeship-bench-pages-'));
  await build({
    configFile: false,
    root: pagesDir,
    base: '/',
    logLevel: 'error',
    // The pages build against the workspaces' TypeScript sources, as demo-pwa does.
    resolve: { conditions: ['edgeship-source', ...defaultClientConditions] },
    // EDGESHIP_BENCH_NO_MINIFY=1 keeps function names, for CPU profiles (bench/profile-inference.ts).
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      sourcemap: false,
      minify: process.env.EDGESHIP_BENCH_NO_MINIFY ? false : 'esbuild',
    },
    worker: { format: 'es' },
  });
  return outDir;
}

/**
 * Serves the built pages, ORT's WASM files under /ort/ and the model under /models/. Without
 * COOP/COEP by default: the page is then not cross-origin isolated, so the runtime's `wasm`
 * backend and raw ORT both run one WASM thread, the comparison the benchmark wants.
 */
export async function serveStatic(root: string, model: string, isolated = false) {
  const server: Server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    let file: string;
    if (path.startsWith('/ort/')) file = join(ortDist, normalize(path.slice(5)));
    else if (path === '/models/silero_vad_v5.onnx') file = model;
    else if (path === '/models/tone/model.json' || path === '/models/tone/weights.bin')
      file = join(toneDir, path.slice(13));
    else file = join(root, normalize(path === '/' ? '/index.html' : path));
    if (!file.startsWith(root) && !file.startsWith(ortDist) && !file.startsWith(toneDir) && file !== model) {
      res.writeHead(403).end();
      return;
    }
    try {
      const info = await stat(file);
      const headers: Record<string, string> = {
        'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
        'Content-Length': String(info.size),
        'Cache-Control': 'no-cache',
      };
      if (isolated) {
        headers['Cross-Origin-Opener-Policy'] = 'same-origin';
        headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
      }
      res.writeHead(200, headers);
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, close: () => new Promise<void>((ok) => server.close(() => ok())) };
}

export interface ModelServer {
  server: TestServer;
  v1: SignedRelease;
  /** Same model with a doc string appended: shares every chunk but the last with v1; not promoted. */
  v2: SignedRelease;
  chunkUrls: string[];
}

export async function startModelServer(): Promise<ModelServer> {
  const server = await startTestServer({
    rateLimits: { publicPerMinute: 1_000_000, adminPerMinute: 100_000 },
  });
  const register = async (version: string, bytes: Uint8Array) => {
    const signed = await makeRelease(server.publisherKey, bytes, {
      model: 'vad',
      version,
      ...SILERO_CONTRACT,
      quantization: { method: 'none' },
    });
    await server.publisher.uploadRelease(signed, new Map([['model.onnx', bytes]]));
    await server.publisher.registerRelease({ release: signed });
    return signed;
  };
  const bytes = await sileroBytes();
  const v1 = await register('1.0.0', bytes);
  await server.operator.promoteRelease('demo-app', 'stable', 'vad', '1.0.0');
  const v2 = await register('1.1.0', withDocString(bytes, 'bench release 1.1.0'));
  await publishTone(server);
  const chunkUrls = v1.signed.files[0]!.chunks.map((c) => `${server.server.url}/v1/chunks/${c.sha256}`);
  return { server, v1, v2, chunkUrls };
}

/** The tone model as a tfjs release (model.json first, then its weights), promoted. */
async function publishTone(server: TestServer) {
  const modelJson = new Uint8Array(await readFile(join(toneDir, 'model.json')));
  const weights = new Uint8Array(await readFile(join(toneDir, 'weights.bin')));
  const signed = await makeRelease(server.publisherKey, modelJson, {
    model: 'tone',
    version: '1.0.0',
    format: 'tfjs',
    files: [await describeFile('model.json', modelJson), await describeFile('weights.bin', weights)],
    inputs: [{ name: 'audio', dtype: 'float32', shape: ['batch', 1024], range: { min: -1, max: 1 } }],
    outputs: [{ name: 'probabilities', dtype: 'float32', shape: ['batch', 3] }],
  });
  await server.publisher.uploadRelease(
    signed,
    new Map([
      ['model.json', modelJson],
      ['weights.bin', weights],
    ]),
  );
  await server.publisher.registerRelease({ release: signed });
  await server.operator.promoteRelease('demo-app', 'stable', 'tone', '1.0.0');
}

export interface BrowserSession {
  browser: Browser;
  page: Page;
  version: string;
  /** Main-thread task time of the page so far (CDP Performance.getMetrics TaskDuration), in ms. */
  mainThreadTaskMs(): Promise<number>;
  /** The pid of the renderer process that runs the page and its workers (CDP SystemInfo). */
  rendererPid(): Promise<number>;
  call<K extends keyof BenchPage>(
    name: K,
    ...args: Parameters<BenchPage[K]>
  ): Promise<Awaited<ReturnType<BenchPage[K]>>>;
  close(): Promise<void>;
}

/** Chromium on the bench page, set up against the model server. */
export async function openBenchPage(models: ModelServer): Promise<BrowserSession> {
  const site = await serveStatic(await buildPages(), sileroPath());
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      ...CHROMIUM_ARGS,
      // A raw CDP port for profiling the page's workers (bench/profile-inference.ts).
      ...(process.env.EDGESHIP_BENCH_CDP_PORT
        ? [`--remote-debugging-port=${process.env.EDGESHIP_BENCH_CDP_PORT}`]
        : []),
    ],
    headless: true,
  });
  const page = await browser.newPage();
  page.on('pageerror', (error) => process.stderr.write(`[page error] ${error.message}\n`));
  await page.goto(`${site.url}/index.html`);
  await page.waitForFunction(() => (globalThis as unknown as { benchReady?: boolean }).benchReady === true);
  const call = (async (name: string, ...args: unknown[]) =>
    page.evaluate(
      ([n, a]) => {
        const b = (globalThis as unknown as { bench: Record<string, (...x: unknown[]) => unknown> }).bench;
        return b[n as string]!(...(a as unknown[]));
      },
      [name, args] as const,
    )) as BrowserSession['call'];
  const setup: PageSetup = {
    server: models.server.server.url,
    trustedRoot: models.server.server.trustedRoot,
    wasmPaths: `${site.url}/ort/`,
    modelUrl: `${site.url}/models/silero_vad_v5.onnx`,
  };
  await call('setup', setup);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  return {
    browser,
    page,
    async mainThreadTaskMs() {
      const { metrics } = await cdp.send('Performance.getMetrics');
      const task = metrics.find((m) => m.name === 'TaskDuration');
      if (!task) throw new Error('Chromium reported no TaskDuration metric');
      return task.value * 1000;
    },
    async rendererPid() {
      const cdpBrowser = await browser.newBrowserCDPSession();
      try {
        const { processInfo } = (await cdpBrowser.send('SystemInfo.getProcessInfo')) as {
          processInfo: Array<{ type: string; id: number; cpuTime: number }>;
        };
        const renderers = processInfo.filter((p) => p.type === 'renderer');
        if (renderers.length === 0) throw new Error('Chromium reported no renderer process');
        // One page: its renderer is the busy one (an idle spare renderer may exist).
        return renderers.sort((a, b) => b.cpuTime - a.cpuTime)[0]!.id;
      } finally {
        await cdpBrowser.detach();
      }
    },
    version: `Chromium ${browser.version()}`,
    call,
    async close() {
      await browser.close();
      await site.close();
    },
  };
}

export { sileroBytes };
