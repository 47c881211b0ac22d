import { AdminClient } from '@edgeship/update-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../../../test/support/server.ts';
import { startCliServer } from '../../test-data/cli-server.ts';
import { edgeship } from '../../test-data/run-cli.ts';

let t: TestServer;
let dir: string;
const as = (token: string) => ({ EDGESHIP_SERVER: t.server.url, EDGESHIP_TOKEN: token });

beforeAll(async () => {
  ({ t, dir } = await startCliServer('token'));
});
afterAll(async () => {
  await t?.stop();
});

async function ok(args: string[], token: string) {
  const run = await edgeship([...args, '--json'], dir, as(token));
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout);
}

describe('edgeship token against a real server', () => {
  it('creates a person’s token, lists it, the audit trail names her, and a revoked token stops working', async () => {
    // The bootstrap admin makes a named admin, who takes over from there.
    const root = await ok(
      ['token', 'create', 'root', '--role', 'admin', '--expires-in', '7'],
      t.server.tokens!.admin,
    );
    expect(root).toMatchObject({ name: 'root', role: 'admin', state: 'active' });
    expect((Date.parse(root.expiresAt) - Date.parse(root.createdAt)) / 86_400_000).toBe(7);

    // Human output: the token on a line of its own, said to be shown once.
    const human = await edgeship(['token', 'create', 'alice', '--role', 'operator'], dir, as(root.token));
    expect(human.code).toBe(0);
    const lines = human.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^token [0-9a-f-]{36} for alice \(operator\), expires \d{4}-/);
    expect(lines[1]).toMatch(/^es_ope_[A-Za-z0-9_-]{32}$/);
    expect(lines[2]).toMatch(/shown this once/);
    const aliceToken = lines[1]!;

    expect(await new AdminClient(t.server.url, aliceToken).whoami()).toMatchObject({ name: 'alice' });
    const { tokens } = await ok(['token', 'list'], root.token);
    const alice = tokens.find((x: { name: string }) => x.name === 'alice');
    expect(alice).toMatchObject({ role: 'operator', state: 'active', revokedAt: null });
    expect(JSON.stringify(tokens)).not.toContain(aliceToken);
    const table = await edgeship(['token', 'list'], dir, as(root.token));
    expect(table.stdout.split('\n')[0]).toBe('id\tname\trole\tstate\tcreated\texpires');
    expect(table.stdout).toMatch(new RegExp(`${alice.id}\\talice\\toperator\\tactive\\t`));
    expect(table.stdout).toMatch(/bootstrap-viewer\tbootstrap-viewer\tviewer\tactive\t\S+\tnever/);

    // Revoked by name (one active token has it): her next command is refused.
    const revoked = await ok(['token', 'revoke', 'alice'], root.token);
    expect(revoked).toMatchObject({ id: alice.id, state: 'revoked' });
    const refused = await edgeship(['status'], dir, as(aliceToken));
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/^edgeship: E_UNAUTHENTICATED: [^\n]+\n$/);
    // And the bootstrap token, replaced, goes too.
    await ok(['token', 'revoke', 'bootstrap-operator'], root.token);
    await expect(t.operator.whoami()).rejects.toMatchObject({ status: 401, code: 'E_UNAUTHENTICATED' });

    const { entries } = await t.viewer.audit({ limit: 4 });
    expect(entries.map((e) => [e.actor, e.action, e.details.name])).toEqual([
      ['root', 'token.revoke', 'bootstrap-operator'],
      ['root', 'token.revoke', 'alice'],
      ['root', 'token.create', 'alice'],
      ['bootstrap-admin', 'token.create', 'root'],
    ]);
    // Seven runs of the real binary: about 3 s each on a loaded 2-core machine.
  }, 120_000);

  it.each<[string, string[], () => string, number, string]>([
    [
      'an unknown role',
      ['token', 'create', 'bob', '--role', 'root'],
      () => t.server.tokens!.admin,
      2,
      'E_CLI',
    ],
    [
      'a bad expiry',
      ['token', 'create', 'bob', '--role', 'viewer', '--expires-in', '0'],
      () => t.server.tokens!.admin,
      2,
      'E_CLI',
    ],
    [
      'a fractional expiry',
      ['token', 'create', 'bob', '--role', 'viewer', '--expires-in', '1.5'],
      () => t.server.tokens!.admin,
      2,
      'E_CLI',
    ],
    [
      'a name the server refuses',
      ['token', 'create', 'Bob Smith', '--role', 'viewer'],
      () => t.server.tokens!.admin,
      1,
      'E_VALIDATION',
    ],
    ['a non-admin token', ['token', 'list'], () => t.server.tokens!.viewer, 4, 'E_FORBIDDEN'],
    [
      'an unknown token to revoke',
      ['token', 'revoke', 'nobody'],
      () => t.server.tokens!.admin,
      1,
      'E_NOT_FOUND',
    ],
  ])('refuses %s', async (_, args, token, exitCode, code) => {
    const run = await edgeship(args, dir, as(token()));
    expect(run.stderr).toMatch(new RegExp(`^edgeship: ${code}: [^\\n]+\\n$`));
    expect(run.code).toBe(exitCode);
  });

  it('creates a token that never expires only when asked', async () => {
    const created = await ok(
      ['token', 'create', 'ci-bot', '--role', 'publisher', '--no-expiry'],
      t.server.tokens!.admin,
    );
    expect(created.expiresAt).toBeNull();
  });
});
