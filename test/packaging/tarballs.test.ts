// What `npm publish` would upload: each publishable package's tarball, packed by its own prepack
// (build) as a release would be, holds what a user runs and nothing of the repository's tests.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, PUBLISHED_PACKAGES, packAll } from '../support/packages.ts';

const run = promisify(execFile);
const VERSION = '0.2.0';

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  license?: string;
  engines?: Record<string, string>;
  sideEffects?: unknown;
  files?: string[];
  bin?: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
  dependencies?: Record<string, string>;
}

interface Unpacked {
  tarball: string;
  dir: string;
  files: string[];
  manifest: Manifest;
}

let unpacked: Record<string, Unpacked>;
let scratch: string;

beforeAll(async () => {
  const tarballs = await packAll();
  scratch = await mkdtemp(join(tmpdir(), 'edgeship-tarballs-'));
  unpacked = {};
  for (const [name, tarball] of Object.entries(tarballs)) {
    const dir = join(scratch, name.replace('/', '+'));
    await run('mkdir', ['-p', dir]);
    await run('tar', ['xzf', tarball, '-C', dir]);
    const { stdout } = await run('tar', ['tzf', tarball]);
    const files = stdout
      .split('\n')
      .filter(Boolean)
      .map((f) => f.replace(/^package\//, ''));
    const manifest = JSON.parse(await readFile(join(dir, 'package/package.json'), 'utf8')) as Manifest;
    unpacked[name] = { tarball, dir: join(dir, 'package'), files, manifest };
  }
}, 600_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/**
 * Prebuilt, self-contained bundles: the runtime's worker (its dependencies are inside it, and it
 * runs in a worker realm where no import map applies: the consumer test's import-map run loads it
 * as shipped). Their chunks have no declarations and import no package.
 */
const BUNDLED = ['dist/worker/'];
const bundled = (file: string) => BUNDLED.some((prefix) => file.startsWith(prefix));

/** Every file an exports map or a bin names, for the conditions a user resolves (not edgeship-source). */
function publishedTargets(manifest: Manifest): string[] {
  const targets = Object.values(manifest.bin ?? {});
  for (const entry of Object.values(manifest.exports)) {
    if (typeof entry === 'string') targets.push(entry);
    else
      for (const [condition, target] of Object.entries(entry))
        if (condition !== 'edgeship-source') targets.push(target);
  }
  return targets.map((t) => t.replace(/^\.\//, ''));
}

/** Bare specifiers the compiled JavaScript imports: each must be a declared dependency. */
async function importedPackages(pkg: Unpacked): Promise<Set<string>> {
  const names = new Set<string>();
  const sources = pkg.files.filter((f) => /^(dist|bin)\/.*\.(m?js)$/.test(f) && !bundled(f));
  for (const file of sources) {
    const text = await readFile(join(pkg.dir, file), 'utf8');
    for (const [, specifier] of text.matchAll(/(?:from|import)\s*\(?\s*["']([^"'./][^"']*)["']/g)) {
      const name = specifier!.startsWith('@')
        ? specifier!.split('/').slice(0, 2).join('/')
        : specifier!.split('/')[0]!;
      if (!name.startsWith('node:') && !builtinModules.includes(name)) names.add(name);
    }
  }
  return names;
}

describe.each(Object.keys(PUBLISHED_PACKAGES))('the %s tarball', (name) => {
  it('holds the compiled JavaScript, its declarations and maps, the licence and the README', () => {
    const { files } = unpacked[name]!;
    for (const file of [
      'package.json',
      'LICENSE',
      'README.md',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/index.d.ts.map',
      'dist/index.js.map',
    ])
      expect(files).toContain(file);
    // Every compiled module has its declaration file.
    for (const js of files.filter((f) => f.startsWith('dist/') && f.endsWith('.js') && !bundled(f)))
      expect(files).toContain(js.replace(/\.js$/, '.d.ts'));
  });

  it('holds no tests, test fixtures, test helpers or build state', () => {
    const unwanted = unpacked[name]!.files.filter((f) =>
      /\.test\.|\.suite\.|(^|\/)testing\.|test-fixtures|test-data|tsbuildinfo|tsconfig|\.e2e\./.test(f),
    );
    expect(unwanted).toEqual([]);
  });

  it('points every export and bin at a file it holds', () => {
    const { files, manifest } = unpacked[name]!;
    const targets = publishedTargets(manifest);
    expect(targets.length).toBeGreaterThan(1);
    for (const target of targets) {
      // A subpath pattern ("./worker/*") must match at least one file.
      if (target.includes('*')) expect(files.some((f) => f.startsWith(target.split('*')[0]!))).toBe(true);
      else expect(files).toContain(target);
    }
  });

  it('is a public 0.2.0 Apache-2.0 package with engines and sideEffects, and declares what it imports', async () => {
    const pkg = unpacked[name]!;
    const { manifest } = pkg;
    expect(manifest.private).toBeUndefined();
    expect(manifest).toMatchObject({ name, version: VERSION, license: 'Apache-2.0' });
    expect(manifest.engines?.node).toMatch(/^>=20/);
    expect(manifest.sideEffects).toBe(false);
    const dependencies = manifest.dependencies ?? {};
    // tsx runs the sources in a checkout only; an installed bin runs dist/.
    expect(dependencies.tsx).toBeUndefined();
    for (const [dep, range] of Object.entries(dependencies)) expect(range, dep).toMatch(/^[\^~]?\d/);
    if (name !== '@edgeship/protocol') expect(dependencies['@edgeship/protocol']).toBe(`^${VERSION}`);
    const undeclared = [...(await importedPackages(pkg))].filter(
      (dep) => !(dep in dependencies) && dep !== name,
    );
    expect(undeclared).toEqual([]);
  });

  it('passes npm publish --dry-run', async () => {
    const { stdout, stderr } = await run('npm', ['publish', '--dry-run', '--json', unpacked[name]!.tarball], {
      cwd: scratch,
      env: cleanEnv(),
    });
    expect(stderr).toMatch(
      /Publishing to https:\/\/registry.npmjs.org\/ with tag latest and public access \(dry-run\)/,
    );
    expect(JSON.parse(stdout.slice(stdout.indexOf('{')))).toMatchObject({
      [name]: { id: `${name}@${VERSION}` },
    });
  }, 60_000);
});

describe('the @edgeship/update-server tarball', () => {
  it('ships the built dashboard, every asset its index.html loads included', async () => {
    const { files, dir } = unpacked['@edgeship/update-server']!;
    expect(files).toContain('dashboard/dist/index.html');
    const html = await readFile(join(dir, 'dashboard/dist/index.html'), 'utf8');
    const assets = [...html.matchAll(/(?:src|href)="\/dashboard\/([^"]+)"/g)].map(
      (m) => `dashboard/dist/${m[1]}`,
    );
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true);
    for (const asset of assets) expect(files).toContain(asset);
    // The dashboard's sources are not shipped, only its build.
    expect(files.filter((f) => f.startsWith('dashboard/') && !f.startsWith('dashboard/dist/'))).toEqual([]);
  });

  it('ships the schema migrations as compiled code', () => {
    expect(unpacked['@edgeship/update-server']!.files).toContain('dist/storage/migrations.js');
  });
});

describe('the @edgeship/protocol tarball', () => {
  it('has a zod-free errors entry', async () => {
    const { dir } = unpacked['@edgeship/protocol']!;
    const errors = await readFile(join(dir, 'dist/errors.js'), 'utf8');
    expect(errors).toMatch(/class EdgeshipError/);
    expect(errors).not.toMatch(/from\s*["'][^.]/);
  });
});
