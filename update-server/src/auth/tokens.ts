import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { ConflictError } from '@edgeship/protocol';
import type { Registry, RegistryStore, Role, TokenRecord } from '../storage/types.ts';

export const ROLES: readonly Role[] = ['admin', 'publisher', 'operator', 'viewer'];

/** Tokens are high-entropy random strings, so a fast hash is enough (no password stretching needed). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newToken(role: Role): string {
  return `es_${role.slice(0, 3)}_${randomBytes(24).toString('base64url')}`;
}

/** Which roles may do what: every role reads; writes need their own role (admin: tokens only). */
export function allows(granted: Role, needed: Role): boolean {
  return needed === 'viewer' || granted === needed;
}

export type TokenState = 'active' | 'expired' | 'revoked';

export function tokenState(token: TokenRecord, at: Date): TokenState {
  if (token.revokedAt !== null) return 'revoked';
  if (token.expiresAt !== null && Date.parse(token.expiresAt) <= at.getTime()) return 'expired';
  return 'active';
}

export async function createToken(
  registry: Registry,
  name: string,
  role: Role,
  opts: { expiresAt?: Date | null; now?: Date; id?: string } = {},
): Promise<string> {
  return (await insertNewToken(registry, name, role, opts)).token;
}

/** Inserts a fresh token and returns its record with the plain token: the only time it exists. */
export async function insertNewToken(
  registry: Registry,
  name: string,
  role: Role,
  opts: { expiresAt?: Date | null; now?: Date; id?: string } = {},
): Promise<{ token: string; record: TokenRecord }> {
  const token = newToken(role);
  const record: TokenRecord = {
    id: opts.id ?? randomUUID(),
    name,
    role,
    hash: hashToken(token),
    createdAt: (opts.now ?? new Date()).toISOString(),
    expiresAt: opts.expiresAt?.toISOString() ?? null,
    revokedAt: null,
  };
  await registry.insertToken(record);
  return { token, record };
}

/** The bootstrap tokens by role, as in `<data>/tokens.json`. */
export type BootstrapTokens = Record<Role, string>;

/**
 * On first start (no token in the database) creates one token per role and writes them to a
 * 0600 file in the data directory, the only place their plain text ever exists. Later starts
 * read that file back if it is still there (the development flow needs them). They never expire:
 * production operators create per-person tokens with the admin token (`edgeship token create`),
 * then revoke the bootstrap ones and delete the file.
 *
 * A database bootstrapped before the admin role existed gets a `bootstrap-admin` token on its
 * next start (added to the file), so its operators can manage tokens at all.
 *
 * Several processes may start together on one PostgreSQL database: the bootstrap tokens have
 * fixed ids and are inserted in one transaction, so exactly one process creates them; the others
 * hit the conflict and read the file (present when they share the data directory, else null).
 */
export async function bootstrapTokens(store: RegistryStore, file: string): Promise<BootstrapTokens | null> {
  const existing = await store.listTokens();
  const missing =
    existing.length === 0 ? ROLES : existing.some((t) => t.role === 'admin') ? [] : ['admin' as const];
  if (missing.length === 0) return readTokensFile(file);
  try {
    return await store.transaction(async (tx) => {
      const tokens = { ...(await readTokensFile(file)) } as BootstrapTokens;
      for (const role of missing) {
        tokens[role] = await createToken(tx, `bootstrap-${role}`, role, { id: `bootstrap-${role}` });
      }
      // Before the commit, so a process that lost the race and shares this directory finds it.
      await writeFile(file, `${JSON.stringify(tokens, null, 2)}\n`, { mode: 0o600 });
      await chmod(file, 0o600);
      return tokens;
    });
  } catch (error) {
    if (error instanceof ConflictError) return readTokensFile(file);
    throw error;
  }
}

async function readTokensFile(file: string): Promise<BootstrapTokens | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as BootstrapTokens;
  } catch {
    return null;
  }
}
