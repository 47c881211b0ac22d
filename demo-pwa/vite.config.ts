import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** A package's version, read from its package.json (the file its exports map may hide). */
function versionOf(pkg: string, entry: string): string {
  let dir = dirname(require.resolve(entry));
  while (
    !existsSync(join(dir, 'package.json')) ||
    JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== pkg
  ) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find ${pkg}'s package.json`);
    dir = up;
  }
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
}

// The runtimes' WASM files live under their version: their names never change between releases,
// so an immutable HTTP cache entry for /ort/x.wasm would outlive an upgrade. /ort/1.30.0/x.wasm
// cannot be stale.
const ORT_DIR = `ort/${versionOf('onnxruntime-web', 'onnxruntime-web')}`;
const TFJS_WASM_DIR = `tfjs/${versionOf('@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-wasm')}`;

/**
 * onnxruntime-web's WASM files are served from the app's own origin, never a CDN, and ship
 * with the build they belong to: the demo works offline and a runtime upgrade never meets a
 * stale WASM file (the service worker precaches them by revision).
 */
function runtimeWasmFiles(): Plugin {
  const copies = [
    // The JSEP build is the one with WebGPU and WASM both; the plain one would be dead weight.
    {
      from: dirname(require.resolve('onnxruntime-web')),
      to: ORT_DIR,
      keep: /^ort-wasm-simd-threaded\.jsep\.(wasm|mjs)$/,
    },
    {
      from: dirname(require.resolve('@tensorflow/tfjs-backend-wasm')),
      to: TFJS_WASM_DIR,
      keep: /^tfjs-backend-wasm.*\.wasm$/,
    },
  ];
  return {
    name: 'edgeship-runtime-wasm',
    async writeBundle(options) {
      for (const { from, to, keep } of copies) {
        const out = join(options.dir ?? join(here, 'dist'), to);
        await mkdir(out, { recursive: true });
        for (const file of await readdir(from))
          if (keep.test(file)) await copyFile(join(from, file), join(out, file));
      }
    },
  };
}

// Decided by the command, not NODE_ENV: a build made from a test run (NODE_ENV=test) must
// still be a production build.
export default defineConfig(({ command }) => ({
  root: here,
  base: '/',
  // The demo builds against the workspaces' TypeScript sources (their "edgeship-source" export
  // condition); an app that installs @edgeship/runtime from npm gets its built dist/.
  resolve: { conditions: ['edgeship-source', ...defaultClientConditions] },
  build: { outDir: 'dist', target: 'es2022', emptyOutDir: true },
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  define: {
    // The pinned root keys are part of the app, never fetched from the server they vouch for.
    __EDGESHIP_TRUSTED_ROOT__: JSON.stringify(process.env.EDGESHIP_TRUSTED_ROOT ?? 'null'),
    // The build copies ORT's files to /ort/; the dev server serves them from node_modules.
    __EDGESHIP_ORT_PATH__: JSON.stringify(
      command === 'build' ? `/${ORT_DIR}/` : '/node_modules/onnxruntime-web/dist/',
    ),
    __EDGESHIP_TFJS_WASM_PATH__: JSON.stringify(
      command === 'build' ? `/${TFJS_WASM_DIR}/` : '/node_modules/@tensorflow/tfjs-backend-wasm/dist/',
    ),
    __EDGESHIP_SERVICE_WORKER__: JSON.stringify(command === 'build'),
  },
  plugins: [
    runtimeWasmFiles(),
    VitePWA({
      strategies: 'generateSW',
      registerType: 'prompt',
      injectRegister: false,
      includeAssets: ['icons/*', 'samples/*'],
      manifest: {
        name: 'Edgeship demo',
        short_name: 'Edgeship',
        description: 'Offline voice activity detection with models kept healthy by Edgeship',
        theme_color: '#0f766e',
        background_color: '#ffffff',
        display: 'standalone',
        start_url: '/',
        icons: [
          { src: '/icons/icon-192.png', sizes: '192x192', type: 'image/png' },
          { src: '/icons/icon-512.png', sizes: '512x512', type: 'image/png' },
          { src: '/icons/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
          { src: '/icons/icon.svg', sizes: 'any', type: 'image/svg+xml' },
        ],
      },
      workbox: {
        // The app shell and the runtime's WASM files; models live in the runtime's IndexedDB
        // store, so manifests, chunks and telemetry (/v1/) never go through this cache.
        globPatterns: ['**/*.{html,js,mjs,css,svg,png,wasm,wav,webmanifest}'],
        // The runtime loads ORT's WASM from /ort/ (wasmPaths); the copy Vite emits is never fetched.
        globIgnores: ['dashboard/**', 'assets/ort-wasm-*.wasm', 'assets/tfjs-backend-wasm*.wasm'],
        maximumFileSizeToCacheInBytes: 64 * 1024 * 1024,
        navigateFallback: '/index.html',
        navigateFallbackDenylist: [/^\/v1\//, /^\/dashboard/, /^\/(healthz|readyz|metrics)/],
        cleanupOutdatedCaches: true,
        // Control the page of the first visit as soon as the shell is cached: offline after the
        // first visit, not the second. Updates still wait (no skipWaiting): see main.ts.
        clientsClaim: true,
      },
    }),
  ],
}));
