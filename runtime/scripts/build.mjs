// Builds what @edgeship/runtime publishes (see ARCHITECTURE.md, "Packaging"):
//   dist/index.js        the main-thread entry: small, its dependencies left to the app's bundler
//   dist/worker/         the worker, prebuilt and self-contained (onnxruntime-web inside, TF.js in
//                        a chunk fetched only when a tfjs release loads), with ORT's WASM build in
//                        dist/worker/ort/: runs as is from a static server, Vite and webpack re-bundle it
//   dist/vite.js         the Vite plugin (@edgeship/runtime/vite)
//   dist/contract.js     the release contract as the worker applies it (@edgeship/runtime/contract)
//   dist/**/*.d.ts       declarations, from tsc
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const require = createRequire(import.meta.url);
rmSync(dist, { recursive: true, force: true });

// Inside the repository the sources name the worker by its .ts path (Vite serves it as is); the
// published entry sits beside dist/worker/worker.js.
const publishedWorkerUrl = {
  name: 'published-worker-url',
  setup(b) {
    b.onLoad({ filter: /src[\\/]client\.ts$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const from = "new URL('./worker/worker.ts', import.meta.url)";
      if (!source.includes(from)) throw new Error(`client.ts no longer contains ${from}`);
      return {
        contents: source.replace(from, "new URL('./worker/worker.js', import.meta.url)"),
        loader: 'ts',
      };
    });
  },
};

// onnxruntime-web asks whether its own URL is a file: URL (running in Node) and, if so, builds
// new URL("ort.min.mjs", import.meta.url). The worker only runs in browsers, so that branch is
// dead here; webpack, which replaces import.meta.url with the file: URL at build time, would
// otherwise take it and fail to resolve "ort.min.mjs".
const ortBrowserOnly = {
  name: 'ort-browser-only',
  setup(b) {
    b.onLoad({ filter: /onnxruntime-web[\\/]dist[\\/]ort\.min\.mjs$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const nodeOnly = [
        ['import.meta.url>"file:"&&import.meta.url<"file;"', 'false'],
        ['new e("ort.min.mjs",import.meta.url)', 'new e("ort.min.mjs",location.href)'],
      ];
      let contents = source;
      for (const [from, to] of nodeOnly) {
        if (!contents.includes(from)) throw new Error(`${args.path} no longer contains ${from}`);
        contents = contents.replaceAll(from, to);
      }
      return { contents, loader: 'js' };
    });
  },
};

const common = { bundle: true, format: 'esm', target: 'es2022', sourcemap: true, logLevel: 'warning' };

await build({
  ...common,
  entryPoints: { index: join(root, 'src/index.ts'), contract: join(root, 'src/contract.ts') },
  outdir: dist,
  platform: 'browser',
  packages: 'external',
  plugins: [publishedWorkerUrl],
});

await build({
  ...common,
  entryPoints: { worker: join(root, 'src/worker/worker.ts') },
  outdir: join(dist, 'worker'),
  platform: 'browser',
  splitting: true,
  // Whitespace stays: it carries onnxruntime-web's /*webpackIgnore*/ and /*@vite-ignore*/ on the
  // import() of its WASM glue, which the app's bundler must leave alone. The app minifies anyway.
  minifySyntax: true,
  minifyIdentifiers: true,
  sourcesContent: false,
  plugins: [ortBrowserOnly],
  // The workspace's protocol sources; ORT's build that loads its WASM from env.wasm.wasmPaths
  // (ort-assets.ts), not the one that embeds a second reference to it.
  conditions: ['edgeship-source', 'onnxruntime-web-use-extern-wasm'],
  chunkNames: '[name]-[hash]',
});

await build({
  ...common,
  entryPoints: { vite: join(root, 'src/vite.ts') },
  outdir: dist,
  platform: 'node',
  packages: 'external',
});

const ortDist = dirname(require.resolve('onnxruntime-web'));
mkdirSync(join(dist, 'worker/ort'), { recursive: true });
for (const file of ['ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm']) {
  copyFileSync(join(ortDist, file), join(dist, 'worker/ort', file));
}

// TF.js's WASM backend is opt-in (RuntimeConfig.tfjsWasmPaths): its single-threaded builds ship
// apart from the worker, for the app to serve, so copying dist/worker/ (esbuild) and what
// Vite and webpack emit carry no unused copy.
const tfjsWasmDist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
mkdirSync(join(dist, 'tfjs-wasm'), { recursive: true });
for (const file of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm']) {
  copyFileSync(join(tfjsWasmDist, file), join(dist, 'tfjs-wasm', file));
}

execFileSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')],
  {
    stdio: 'inherit',
  },
);
