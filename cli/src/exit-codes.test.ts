// The exit-code table of cli/README.md, row by row, through the real binary: every code a row names
// exits with that row's status, as one line on stderr, and with --json as one
// `{ "error": { "code", "message" } }` document on stdout, with the same status.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitCodeOf, isErrorCode } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sileroPath } from '../../test/support/models.ts';
import type { TestServer } from '../../test/support/server.ts';
import { startCliServer } from '../test-data/cli-server.ts';
import { edgeship } from '../test-data/run-cli.ts';

const README = fileURLToPath(new URL('../README.md', import.meta.url));
const CONTRACT = fileURLToPath(new URL('../test-data/contracts/silero.json', import.meta.url));

let t: TestServer;
let dir: string;

beforeAll(async () => {
  ({ t, dir } = await startCliServer('exit-codes'));
  expect((await edgeship(['keygen', '--dir', 'keys'], dir)).code).toBe(0);
  expect((await edgeship(['keygen', '--dir', 'other'], dir)).code).toBe(0);
  // The key set with its version changed after signing.
  const keySet = JSON.parse(await readFile(join(dir, 'keys/keyset.json'), 'utf8'));
  keySet.signed.version += 1;
  await writeFile(join(dir, 'edited-keyset.json'), JSON.stringify(keySet));
}, 60_000);

afterAll(async () => {
  await t?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const server = () => ['--server', t.server.url];
const channel = ['--app', 'demo', '--channel', 'none'];
const setShare = (token: () => string) => () => [
  'rollout',
  'set',
  'vad',
  '5',
  ...channel,
  ...server(),
  '--token',
  token(),
];

/** One command line per code the table names (or `ok` for 0), and the tokens it runs with. */
const SCENARIOS: Record<string, () => string[]> = {
  ok: () => ['keygen', '--dir', `keys-${Math.random().toString(36).slice(2)}`],
  // A dry run stops before the server; the size gate needs no calibration data.
  E_GATE: () => [
    ...['publish', sileroPath(), '--name', 'vad', '--version', '1.0.0', '--contract', CONTRACT],
    ...['--publisher-key', 'keys/publisher.key.json', '--dry-run', '--max-size', '1'],
  ],
  E_UNKNOWN_KEY: () => ['verify', 'keys/keyset.json', '--root', 'other/root.pub.json'],
  E_SIGNATURE: () => ['verify', 'edited-keyset.json', '--root', 'keys/root.pub.json'],
  E_NOT_FOUND: setShare(() => t.server.tokens!.operator),
  E_CLI: () => ['status', '--server', 'not a url', '--token', 'x'],
  E_USAGE: () => ['rollout', 'halt', 'vad', ...channel],
  E_AUTH: () => ['status', ...server()],
  E_NETWORK: () => ['status', '--server', 'http://127.0.0.1:9', '--token', 'x'],
  E_UNAUTHENTICATED: () => ['status', ...server(), '--token', 'es_vie_nope'],
  E_FORBIDDEN: () => [
    'rollout',
    'start',
    'vad',
    '1.0.0',
    '5',
    ...channel,
    ...server(),
    '--token',
    t.server.tokens!.viewer,
  ],
};

/** The README's table: `| exit | meaning | codes |`, codes in backticks. */
async function readmeRows(): Promise<{ exit: number; codes: string[] }[]> {
  const text = await readFile(README, 'utf8');
  const rows = [...text.matchAll(/^\| (\d) \| [^|\n]+ \| ([^|\n]*) \|$/gm)];
  return rows.map(([, exit, codes]) => ({
    exit: Number(exit),
    codes: [...codes!.matchAll(/`(E_[A-Z_]+)`/g)].map((m) => m[1]!),
  }));
}

const rows = await readmeRows();

describe('the README exit-code table', () => {
  it('has a row for every exit code, 0 to 4, each naming its codes', () => {
    expect(rows.map((r) => r.exit)).toEqual([0, 1, 2, 3, 4]);
    for (const row of rows.slice(1)) expect(row.codes.length, `exit ${row.exit}`).toBeGreaterThan(0);
  });

  it("gives each code the exit of its row in protocol's ERROR_TABLE", () => {
    for (const row of rows.slice(1)) {
      for (const code of row.codes) {
        expect(isErrorCode(code), code).toBe(true);
        expect(exitCodeOf(code as Parameters<typeof exitCodeOf>[0]), code).toBe(row.exit);
      }
    }
  });

  it('exits 0 on success, with nothing on stderr', async () => {
    const run = await edgeship([...SCENARIOS.ok!(), '--json'], dir);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(run.stdout)).not.toHaveProperty('error');
  });

  const cases = rows.flatMap((row) => row.codes.map((code) => [code, row.exit] as const));
  it.each(cases)(
    '%s exits %i, one line on stderr, and with --json an error document on stdout',
    async (code, exit) => {
      const scenario = SCENARIOS[code];
      expect(scenario, `no scenario for ${code}`).toBeDefined();
      const plain = await edgeship(scenario!(), dir);
      expect(plain.code).toBe(exit);
      const lines = plain.stderr.trimEnd().split('\n');
      // commander's usage errors print its own line, then the help.
      if (code === 'E_USAGE') expect(lines[0]).toMatch(/^error: /);
      else expect(plain.stderr).toMatch(new RegExp(`^edgeship: ${code}: [^\\n]+\\n$`));

      const json = await edgeship([...scenario!(), '--json'], dir);
      expect(json.code).toBe(exit);
      const document = JSON.parse(json.stdout);
      expect(document).toMatchObject({ ok: false, error: { code } });
      expect(document.error.message).toEqual(expect.any(String));
    },
    60_000,
  );
});
