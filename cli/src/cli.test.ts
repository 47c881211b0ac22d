import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { SOURCE_CONDITION_ARG } from '../../test/support/node-args.ts';
import { createTestTrust, makeTestManifest } from '../../test/support/trust.ts';

const BIN = fileURLToPath(new URL('../bin/edgeship.mjs', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real binary, as a script would. */
function edgeship(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SOURCE_CONDITION_ARG, BIN, ...args], { cwd }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgeship-cli-'));
  const run = await edgeship(['keygen', '--dir', 'keys', '--json'], dir);
  expect(run.code).toBe(0);
});

describe('edgeship keygen and verify', () => {
  it('creates private keys readable only by their owner and a key set that verifies', async () => {
    const { stat } = await import('node:fs/promises');
    expect((await stat(join(dir, 'keys/root.key.json'))).mode & 0o777).toBe(0o600);
    const run = await edgeship(['verify', 'keys/keyset.json', '--root', 'keys/root.pub.json', '--json'], dir);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true, type: 'keyset', version: 1 });
  });

  it('rotates the online key with a new key set version', async () => {
    const { code: genCode } = await edgeship(['keygen', '--dir', 'keys2'], dir);
    expect(genCode).toBe(0);
    const run = await edgeship(
      [
        'keyset',
        '--root',
        'keys/root.key.json',
        '--online',
        'keys2/online.key.json',
        '--publisher',
        'keys/publisher.key.json',
        '--keyset-version',
        '2',
        '--out',
        'keyset2.json',
      ],
      dir,
    );
    expect(run.code).toBe(0);
    const keySet = JSON.parse(await readFile(join(dir, 'keyset2.json'), 'utf8'));
    const online = JSON.parse(await readFile(join(dir, 'keys2/online.key.json'), 'utf8'));
    expect(keySet.signed.version).toBe(2);
    expect(keySet.signed.onlineKeys[0].keyId).toBe(online.keyId);
    expect(keySet.signed.onlineKeys[0].privateKey).toBeUndefined();
    expect((await edgeship(['verify', 'keyset2.json', '--root', 'keys/root.pub.json'], dir)).code).toBe(0);
  });

  it('verifies a manifest and refuses an edited one with its error code', async () => {
    const trust = await createTestTrust();
    await writeFile(join(dir, 'trusted-root.json'), JSON.stringify(trust.trustedRoot));
    const envelope = await makeTestManifest(trust);
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(envelope));
    expect((await edgeship(['verify', 'manifest.json', '--root', 'trusted-root.json'], dir)).code).toBe(0);

    envelope.signed.version = 99;
    await writeFile(join(dir, 'edited.json'), JSON.stringify(envelope));
    const run = await edgeship(['verify', 'edited.json', '--root', 'trusted-root.json'], dir);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^edgeship: E_SIGNATURE: .+\n$/);

    const wrongRoot = await edgeship(['verify', 'manifest.json', '--root', 'keys/root.pub.json'], dir);
    expect(wrongRoot.code).toBe(1);
    expect(wrongRoot.stderr).toMatch(/^edgeship: E_UNKNOWN_KEY: /);
  });

  it.each([
    ['a missing file', ['verify', 'missing.json', '--root', 'keys/root.pub.json'], 2],
    [
      'a key file in place of the root keys',
      ['verify', 'keys/keyset.json', '--root', 'keys/online.key.json'],
      1,
    ],
    ['a key that would be overwritten', ['keygen', '--dir', 'keys'], 2],
    ['a bad number', ['keygen', '--dir', 'k3', '--expires-days', 'soon'], 2],
    ['an unknown command', ['bogus'], 2],
  ])('exits non-zero with a one-line reason on %s', async (_, args, exitCode) => {
    const run = await edgeship(args as string[], dir);
    expect(run.code).toBe(exitCode);
    expect(run.stderr.trim().length).toBeGreaterThan(0);
    if (args[0] !== 'bogus') expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('npx edgeship in the repository', () => {
  it('prints the version with nothing on stderr: no npm warning from the project config', async () => {
    const repo = fileURLToPath(new URL('../..', import.meta.url));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
    const run = await new Promise<Run>((resolve) => {
      execFile('npx', ['edgeship', '--version'], { cwd: repo, env }, (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
      });
    });
    const { version } = JSON.parse(await readFile(join(repo, 'cli/package.json'), 'utf8'));
    expect(run).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });
});
