// The packages as a user installs them: @edgeship/cli and @edgeship/update-server from their
// tarballs into a project outside the workspace (other dependencies from the registry), then the
// installed bins: versions, help, a real server with its dashboard, and Silero VAD published to it.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sileroPath } from '../support/models.ts';
import { cleanEnv, installConsumer } from '../support/packages.ts';

const REPO = resolve(import.meta.dirname, '../..');
const TEST_DATA = join(REPO, 'cli/test-data');

let consumer: string;
let work: string;
let server: { url: string; child: ChildProcess; dataDir: string } | undefined;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs an installed bin from node_modules/.bin, as `npx edgeship` would, outside the workspace. */
function bin(name: string, args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(
      join(consumer, 'node_modules/.bin', name),
      args,
      { cwd: work, env: cleanEnv(), maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Starts the installed edgeship-server on a free port and waits for its listening line. */
async function startInstalledServer(): Promise<NonNullable<typeof server>> {
  const dataDir = await mkdtemp(join(tmpdir(), 'edgeship-installed-data-'));
  const child = spawn(
    join(consumer, 'node_modules/.bin/edgeship-server'),
    ['--data-dir', dataDir, '--port', '0', '--create-keys', '--log-level', 'warn'],
    { cwd: work, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (text: string) => stderr.push(text));
  const url = await new Promise<string>((done, fail) => {
    child.once('exit', (code) => fail(new Error(`edgeship-server exited (${code}): ${stderr.join('')}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes('"listening"')) done(JSON.parse(line).url);
    });
  });
  child.removeAllListeners('exit');
  return { url, child, dataDir };
}

beforeAll(async () => {
  consumer = await mkdtemp(join(tmpdir(), 'edgeship-consumer-'));
  work = await mkdtemp(join(tmpdir(), 'edgeship-consumer-work-'));
  // Packs (or reuses this run's tarballs), then npm install: better-sqlite3 may compile here.
  await installConsumer(consumer, ['@edgeship/cli', '@edgeship/update-server']);
  server = await startInstalledServer();
}, 900_000);

afterAll(async () => {
  if (server) {
    const exited = new Promise((done) => server!.child.once('exit', done));
    server.child.kill('SIGTERM');
    await exited;
    await rm(server.dataDir, { recursive: true, force: true });
  }
  for (const dir of [consumer, work]) if (dir) await rm(dir, { recursive: true, force: true });
});

describe('installed from the tarballs', () => {
  it('installs outside the workspace, runs from dist/ and pulls no tsx', async () => {
    expect(consumer.startsWith(REPO)).toBe(false);
    const cli = await realpath(join(consumer, 'node_modules/@edgeship/cli'));
    expect(cli).toBe(join(await realpath(consumer), 'node_modules/@edgeship/cli'));
    expect(existsSync(join(cli, 'dist/cli.js'))).toBe(true);
    expect(existsSync(join(cli, 'tsconfig.build.json'))).toBe(false);
    expect(existsSync(join(consumer, 'node_modules/tsx'))).toBe(false);
    // npm_config_onnxruntime_node_install=skip (cleanEnv, as scripts/setup.sh): no CUDA download.
    const ortBinaries = join(
      consumer,
      'node_modules/onnxruntime-node/bin/napi-v6',
      process.platform,
      process.arch,
    );
    expect(existsSync(join(ortBinaries, 'onnxruntime_binding.node'))).toBe(true);
    expect(existsSync(join(ortBinaries, 'libonnxruntime_providers_cuda.so'))).toBe(false);
    // One copy of the protocol, the tarball's, shared by the CLI and the server.
    const protocol = JSON.parse(
      await readFile(join(consumer, 'node_modules/@edgeship/protocol/package.json'), 'utf8'),
    );
    expect(protocol.version).toBe('0.2.0');
    expect(existsSync(join(consumer, 'node_modules/@edgeship/cli/node_modules/@edgeship'))).toBe(false);
  });

  it('type-checks a consumer against the shipped declarations (NodeNext, skipLibCheck off)', async () => {
    await writeFile(
      join(consumer, 'consumer.ts'),
      [
        "import { type Manifest, verifyManifest } from '@edgeship/protocol';",
        "import { EdgeshipError, ERROR_CODES } from '@edgeship/protocol/errors';",
        "import { AdminClient } from '@edgeship/update-server/admin-client';",
        "import { startServer } from '@edgeship/update-server';",
        "import { runCli } from '@edgeship/cli';",
        'export const exitCode: Promise<number> = runCli([]);',
        'export const codes: readonly string[] = ERROR_CODES;',
        'export type Check = Parameters<typeof verifyManifest>[1] | Manifest;',
        'export { AdminClient, EdgeshipError, startServer };',
        // Must fail: proves the compiler really read the declarations.
        'export const wrong: string = verifyManifest;',
      ].join('\n'),
    );
    await writeFile(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: [],
        },
        files: ['consumer.ts'],
      }),
    );
    // The repository's compiler, run in the consumer: only the consumer's node_modules resolve.
    const tsc = await new Promise<Run>((done) =>
      execFile(
        process.execPath,
        [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'],
        { cwd: consumer, env: cleanEnv() },
        (error, stdout, stderr) => done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      ),
    );
    const errors = tsc.stdout.trim().split('\n');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^consumer\.ts\(10,14\): error TS2322: .* is not assignable to type 'string'/);
  }, 180_000);

  it('edgeship --version and edgeship-server --version print the package version', async () => {
    expect(await bin('edgeship', ['--version'])).toEqual({ code: 0, stdout: '0.2.0\n', stderr: '' });
    expect(await bin('edgeship-server', ['--version'])).toEqual({ code: 0, stdout: '0.2.0\n', stderr: '' });
  });

  it('edgeship --help lists the commands and exits 0', async () => {
    const run = await bin('edgeship', ['--help']);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    for (const command of ['keygen', 'verify', 'publish', 'rollout', 'status'])
      expect(run.stdout).toContain(command);
  });

  it('edgeship-server serves its dashboard from the package', async () => {
    const page = await fetch(`${server!.url}/dashboard/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    const html = await page.text();
    const script = html.match(/src="(\/dashboard\/assets\/[^"]+\.js)"/)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${server!.url}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
    expect((await asset.text()).length).toBeGreaterThan(1000);
  });

  it('edgeship publish quantizes, validates and publishes Silero VAD to the installed server', async () => {
    const tokens = JSON.parse(await readFile(join(server!.dataDir, 'tokens.json'), 'utf8'));
    const publish = (version: string, extra: string[]) =>
      bin('edgeship', [
        'publish',
        sileroPath(),
        ...['--name', 'vad', '--version', version, '--quantize', 'int8'],
        ...['--calibration', TEST_DATA, '--contract', join(TEST_DATA, 'contracts/silero.json')],
        ...['--publisher-key', join(server!.dataDir, 'keys/publisher.key.json')],
        ...['--server', server!.url, '--token', tokens.publisher],
        ...extra,
      ]);

    // Not a terminal: progress is plain lines on stderr, from the first step to the whole upload.
    const plain = await publish('1.0.0', []);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^published vad@1\.0\.0/);
    expect(plain.stderr).toMatch(/^upload: 0% 0\/[1-9]\d* bytes/m);
    expect(plain.stderr).toMatch(/^upload: 100% ([1-9]\d*)\/\1 bytes/m);
    // No carriage returns or escape sequences: a bar would redraw its line with them.
    expect(plain.stderr.includes('\r') || plain.stderr.includes('\u001b[')).toBe(false);

    const json = await publish('1.1.0', ['--json']);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, release: 'vad@1.1.0' });

    const status = await bin('edgeship', [
      'status',
      '--json',
      '--server',
      server!.url,
      '--token',
      tokens.viewer,
    ]);
    expect(status.code).toBe(0);
    const versions = JSON.parse(status.stdout).releases.map((r: { version: string }) => r.version);
    expect(versions.sort()).toEqual(['1.0.0', '1.1.0']);
  }, 300_000);
});
