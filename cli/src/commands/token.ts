import { NotFoundError } from '@edgeship/protocol';
import type { TokenSummary } from '@edgeship/update-server/admin-client';
import type { Command } from 'commander';
import { adminClient, type ServerOptions } from '../server/admin.ts';
import { CliError, type OutputOptions, print } from './output.ts';
import { parseNumber, withServer } from './server-flags.ts';

const ROLES = ['admin', 'publisher', 'operator', 'viewer'];

type Flags = ServerOptions & OutputOptions;

/** `edgeship token create | list | revoke`: per-person bearer tokens, managed with an admin token. */
export function registerToken(program: Command): void {
  const token = program
    .command('token')
    .description('create, list and revoke admin API tokens (needs an admin token)');

  withServer(
    token
      .command('create <name>')
      .description('create a token for a person or service; it is printed once, never stored')
      .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
      .option('--expires-in <days>', 'days until it expires', '90')
      .option('--no-expiry', 'never expires (not recommended)'),
  )
    .option('--json', 'print JSON')
    .action(async (name: string, flags: Flags & { role: string; expiresIn: string; expiry: boolean }) => {
      if (!ROLES.includes(flags.role)) {
        throw new CliError(`--role ${flags.role}: use one of ${ROLES.join(', ')}`);
      }
      const expiresInDays = flags.expiry ? parseNumber(flags.expiresIn, '--expires-in', 1, 3650)! : null;
      if (expiresInDays !== null && !Number.isInteger(expiresInDays)) {
        throw new CliError(`--expires-in must be a whole number of days, got "${flags.expiresIn}"`);
      }
      const created = await adminClient(flags).createToken({ name, role: flags.role, expiresInDays });
      print(flags, created, () => [
        `token ${created.id} for ${created.name} (${created.role}), ${created.expiresAt ? `expires ${created.expiresAt}` : 'never expires'}:`,
        created.token,
        'It is shown this once: store it in your secret manager now.',
      ]);
    });

  withServer(
    token
      .command('list')
      .description('every token: id, name, role, state, created, expires (never the token)'),
  )
    .option('--json', 'print JSON')
    .action(async (flags: Flags) => {
      const { tokens } = await adminClient(flags).listTokens();
      print(flags, { tokens }, () => [
        ['id', 'name', 'role', 'state', 'created', 'expires'].join('\t'),
        ...tokens.map((t) => [t.id, t.name, t.role, t.state, t.createdAt, t.expiresAt ?? 'never'].join('\t')),
      ]);
    });

  withServer(
    token
      .command('revoke <token>')
      .description('revoke a token by id, or by name when exactly one active token has that name'),
  )
    .option('--json', 'print JSON')
    .action(async (idOrName: string, flags: Flags) => {
      const client = adminClient(flags);
      const { tokens } = await client.listTokens();
      const target = resolveToken(tokens, idOrName);
      const revoked = await client.revokeToken(target.id);
      print(flags, revoked, () => [`revoked token ${revoked.id} of ${revoked.name} (${revoked.role})`]);
    });
}

function resolveToken(tokens: TokenSummary[], idOrName: string): TokenSummary {
  const byId = tokens.find((t) => t.id === idOrName);
  if (byId) return byId;
  const byName = tokens.filter((t) => t.name === idOrName && t.state === 'active');
  if (byName.length === 1) return byName[0]!;
  if (byName.length > 1) {
    throw new CliError(
      `${byName.length} active tokens are named ${idOrName}: revoke by id (${byName.map((t) => t.id).join(', ')})`,
    );
  }
  throw new NotFoundError(`no token with id ${idOrName}, nor an active one of that name`);
}
