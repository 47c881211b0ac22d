/**
 * The published packages as users get them: `packAll()` builds and packs every publishable
 * workspace once (cached by a hash of its sources, shared by every test file and process of a run),
 * and `installConsumer()` installs some of them into a project outside the workspace, as
 * `npm install @edgeship/x` would, except that every @edgeship/* name resolves to its tarball
 * (npm `overrides`), so npm never asks the registry for one. Other dependencies come from the
 * registry (npm's cache first).
 *
 *   const tarballs = await packAll();                        // { '@edgeship/cli': '/tmp/…/edgeship-cli-0.2.0.tgz', … }
 *   await installConsumer(dir, ['@edgeship/cli', 'vite@8.3.8']);
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');

/** The publishable workspaces, dependencies first (npm packs them in this order). */
export const PUBLISHED_PACKAGES: Readonly<Record<string, string>> = {
  '@edgeship/protocol': 'protocol',
  '@edgeship/runtime': 'runtime',
  '@edgeship/update-server': 'update-server',
  '@edgeship/cli': 'cli',
};

/** What a package's tarball is made of; a change to any of it means packing again. */
const SOURCES = [
  'package.json',
  'tsconfig.build.json',
  'README.md',
  'LICENSE',
  'bin',
  'scripts',
  'src',
  'dashboard',
];
const SHARED_SOURCES = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];
const SKIP = new Set(['node_modules', 'dist', 'dist.next']);

/**
 * An environment for npm and node children with nothing of this process's npm run or test set-up:
 * `npm_*` variables (npm_config_local_prefix would point npm at the workspace), NODE_OPTIONS (a
 * --conditions=edgeship-source would send the installed packages to their sources).
 */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !/^npm_/i.test(key) && key !== 'NODE_OPTIONS' && !key.startsWith('EDGESHIP_'),
    ),
  );
  // onnxruntime-node's postinstall would fetch CUDA libraries from NuGet (script/install.js):
  // the variable scripts/setup.sh exports for the repository's own install.
  return { ...env, npm_config_onnxruntime_node_install: 'skip', ...extra };
}

async function hashTree(hash: ReturnType<typeof createHash>, path: string): Promise<void> {
  const info = await stat(path).catch(() => null);
  if (!info) return;
  if (info.isDirectory()) {
    for (const entry of (await readdir(path)).sort())
      if (!SKIP.has(entry)) await hashTree(hash, join(path, entry));
    return;
  }
  hash
    .update(relative(REPO, path))
    .update('\0')
    .update(await readFile(path))
    .update('\0');
}

/** A hash of everything the tarballs are built from. */
export async function sourcesHash(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of SHARED_SOURCES) await hashTree(hash, join(REPO, file));
  for (const dir of Object.values(PUBLISHED_PACKAGES))
    for (const source of SOURCES) await hashTree(hash, join(REPO, dir, source));
  return hash.digest('hex').slice(0, 16);
}

const CACHE = join(tmpdir(), 'edgeship-packages');
let packing: Promise<Record<string, string>> | undefined;

/**
 * Builds (each package's `prepack`) and packs every publishable package, once per source hash:
 * the tarballs are kept in $TMPDIR/edgeship-packages/<hash>/ and reused by later calls, test files
 * and runs. Resolves to the tarball path of each package name.
 */
export function packAll(): Promise<Record<string, string>> {
  packing ??= packOnce().catch((error) => {
    packing = undefined;
    throw error;
  });
  return packing;
}

async function packOnce(): Promise<Record<string, string>> {
  const hash = await sourcesHash();
  const dir = join(CACHE, hash);
  const index = join(dir, 'tarballs.json');
  await mkdir(CACHE, { recursive: true });
  // One packer at a time (the builds write each workspace's dist/): mkdir is atomic.
  const lock = `${dir}.lock`;
  for (;;) {
    if (existsSync(index)) return JSON.parse(await readFile(index, 'utf8'));
    try {
      await mkdir(lock);
      await writeFile(join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      if (await lockIsStale(lock)) await rm(lock, { recursive: true, force: true });
      else await new Promise((done) => setTimeout(done, 500));
    }
  }
  try {
    if (existsSync(index)) return JSON.parse(await readFile(index, 'utf8'));
    const staging = `${dir}.tmp-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    const workspaces = Object.values(PUBLISHED_PACKAGES).flatMap((ws) => ['-w', ws]);
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', staging, ...workspaces], {
      cwd: REPO,
      env: cleanEnv(),
      maxBuffer: 64 * 1024 * 1024,
    });
    // npm prints the prepack scripts' output before the JSON array (a line of its own: `[`).
    const packed = JSON.parse(stdout.slice(stdout.search(/^\[\s*$/m))) as {
      name: string;
      filename: string;
    }[];
    const tarballs = Object.fromEntries(packed.map((p) => [p.name, join(dir, p.filename)]));
    await writeFile(join(staging, 'tarballs.json'), JSON.stringify(tarballs, null, 2));
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
    return tarballs;
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

async function lockIsStale(lock: string): Promise<boolean> {
  const pid = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => ''));
  if (!pid) {
    // Just created (pid not written yet), or left by a crash between mkdir and writeFile.
    const info = await stat(lock).catch(() => null);
    return !info || Date.now() - info.mtimeMs > 30_000;
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

/**
 * Installs `deps` into `dir` (created; keep it outside the workspace, e.g. under os.tmpdir()) with
 * `npm install`: an `@edgeship/*` name installs this run's tarball (and every @edgeship package
 * any of them depends on resolves to its tarball too); anything else is a registry spec
 * (`vite@8.3.8`, `webpack`). The project is `"type": "module"` and private.
 */
export async function installConsumer(dir: string, deps: readonly string[]): Promise<void> {
  const tarballs = await packAll();
  const fileSpec = (name: string) => `file:${tarballs[name]}`;
  const dependencies: Record<string, string> = {};
  for (const dep of deps) {
    if (dep.startsWith('@edgeship/')) {
      if (!tarballs[dep])
        throw new Error(`${dep} is not a published package (${Object.keys(tarballs).join(', ')})`);
      dependencies[dep] = fileSpec(dep);
    } else {
      const at = dep.lastIndexOf('@');
      const [name, spec] = at > 0 ? [dep.slice(0, at), dep.slice(at + 1)] : [dep, '*'];
      dependencies[name] = spec;
    }
  }
  const overrides = Object.fromEntries(Object.keys(tarballs).map((name) => [name, fileSpec(name)]));
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify(
      { name: 'edgeship-consumer', private: true, type: 'module', dependencies, overrides },
      null,
      2,
    ),
  );
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
    cwd: dir,
    env: cleanEnv(),
    maxBuffer: 64 * 1024 * 1024,
  });
}
