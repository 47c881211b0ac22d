import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { AdminApiError, AdminClient } from '../admin-client.ts';
import { openStorage } from '../storage/open.ts';
import { closeStorage } from '../storage/registry.suite.ts';
import { bootstrapTokens, createToken } from './tokens.ts';

async function failure(promise: Promise<unknown>): Promise<{ status: number; code: string }> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AdminApiError);
  return { status: (error as AdminApiError).status, code: (error as AdminApiError).code };
}

// The token lifecycle touches the registry: it runs on both databases.
for (const database of ['SQLite', 'PostgreSQL'] as const) {
  describe(`token lifecycle on ${database}`, () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer({ postgres: database === 'PostgreSQL' });
      await publish(t, seededBytes(3000, 1), { model: 'kws', version: '1.0.0' });
    });
    afterAll(async () => {
      await t?.stop();
    });

    it('creates per-person tokens, shown once, whose actions the audit trail names', async () => {
      const root = await t.admin.createToken({ name: 'root@example.org', role: 'admin', expiresInDays: 30 });
      expect(root).toMatchObject({
        name: 'root@example.org',
        role: 'admin',
        state: 'active',
        revokedAt: null,
      });
      expect(root.token).toMatch(/^es_adm_[A-Za-z0-9_-]{32}$/);
      const days = (Date.parse(root.expiresAt!) - Date.parse(root.createdAt)) / 86_400_000;
      expect(days).toBe(30);
      const rootClient = new AdminClient(t.server.url, root.token);

      const alice = await rootClient.createToken({ name: 'alice', role: 'operator' });
      expect((Date.parse(alice.expiresAt!) - Date.parse(alice.createdAt)) / 86_400_000).toBe(90);
      const aliceClient = new AdminClient(t.server.url, alice.token);
      expect(await aliceClient.whoami()).toEqual({
        name: 'alice',
        role: 'operator',
        expiresAt: alice.expiresAt,
      });
      await aliceClient.promoteRelease('demo-app', 'stable', 'kws', '1.0.0');

      // Listed without the token or its hash; the stored hash is not the token.
      const { tokens } = await rootClient.listTokens();
      const listed = tokens.find((x) => x.id === alice.id)!;
      expect(Object.keys(listed).sort()).toEqual(
        ['createdAt', 'expiresAt', 'id', 'name', 'revokedAt', 'role', 'state'].sort(),
      );
      expect(JSON.stringify(tokens)).not.toContain(alice.token);
      expect(tokens.map((x) => x.name)).toEqual(
        expect.arrayContaining(['alice', 'root@example.org', 'bootstrap-admin', 'bootstrap-operator']),
      );
      const stored = await t.server.registry.getToken(alice.id);
      expect(stored!.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(stored!.hash).not.toContain(alice.token);

      const { entries } = await t.viewer.audit({ limit: 10 });
      const [promote, createAlice, createRoot] = entries;
      expect(promote).toMatchObject({ actor: 'alice', action: 'release.promote', model: 'kws' });
      expect(createAlice).toMatchObject({
        actor: 'root@example.org',
        action: 'token.create',
        details: { id: alice.id, name: 'alice', role: 'operator', expiresAt: alice.expiresAt },
      });
      expect(createRoot).toMatchObject({ actor: 'bootstrap-admin', action: 'token.create' });
      expect(JSON.stringify(entries)).not.toContain(alice.token);
    });

    it('refuses a revoked token from the next request on, and audits who revoked it', async () => {
      const bob = await t.admin.createToken({ name: 'bob', role: 'viewer', expiresInDays: 1 });
      const bobClient = new AdminClient(t.server.url, bob.token);
      expect((await bobClient.whoami()).name).toBe('bob');
      const revoked = await t.admin.revokeToken(bob.id);
      expect(revoked).toMatchObject({ id: bob.id, state: 'revoked' });
      expect(revoked.revokedAt).not.toBeNull();
      expect(await failure(bobClient.whoami())).toEqual({ status: 401, code: 'E_UNAUTHENTICATED' });
      expect(await failure(t.admin.revokeToken(bob.id))).toEqual({ status: 409, code: 'E_INVALID_STATE' });
      const [entry] = (await t.viewer.audit({ limit: 1 })).entries;
      expect(entry).toMatchObject({
        actor: 'bootstrap-admin',
        action: 'token.revoke',
        details: { id: bob.id, name: 'bob', role: 'viewer' },
      });
    });

    it('refuses an expired token and lists it as expired', async () => {
      const expired = await createToken(t.server.registry, 'carol', 'operator', {
        expiresAt: new Date(Date.now() - 1000),
      });
      expect(await failure(new AdminClient(t.server.url, expired).whoami())).toEqual({
        status: 401,
        code: 'E_UNAUTHENTICATED',
      });
      const { tokens } = await t.admin.listTokens();
      expect(tokens.find((x) => x.name === 'carol')).toMatchObject({ state: 'expired', revokedAt: null });
    });

    it('lets only admin tokens manage tokens, and admin tokens nothing else', async () => {
      expect(await failure(t.operator.createToken({ name: 'mallory', role: 'admin' }))).toEqual({
        status: 403,
        code: 'E_FORBIDDEN',
      });
      expect(await failure(t.viewer.listTokens())).toEqual({ status: 403, code: 'E_FORBIDDEN' });
      expect(await failure(t.publisher.revokeToken('bootstrap-admin'))).toEqual({
        status: 403,
        code: 'E_FORBIDDEN',
      });
      expect(
        await failure(
          t.admin.createRollout({
            app: 'demo-app',
            channel: 'stable',
            model: 'kws',
            release: '1.0.0',
            shareBps: 5,
          }),
        ),
      ).toEqual({ status: 403, code: 'E_FORBIDDEN' });
      // Reading is every role's.
      expect((await t.admin.audit({ limit: 1 })).entries).toHaveLength(1);
    });

    it('refuses reserved or malformed names, bad expiries, unknown ids and revoking the last admin', async () => {
      for (const input of [
        { name: 'bootstrap-operator', role: 'operator' },
        { name: 'canary-analysis', role: 'operator' },
        { name: 'Alice Smith', role: 'operator' },
        { name: 'x'.repeat(65), role: 'operator' },
        { name: 'dave', role: 'root' },
        { name: 'dave', role: 'viewer', expiresInDays: 0 },
        { name: 'dave', role: 'viewer', expiresInDays: 3651 },
        { name: 'dave', role: 'viewer', expiresInDays: 1.5 },
      ]) {
        expect({ input, ...(await failure(t.admin.createToken(input))) }).toEqual({
          input,
          status: 400,
          code: 'E_VALIDATION',
        });
      }
      expect(await failure(t.admin.revokeToken('00000000-0000-4000-8000-000000000000'))).toEqual({
        status: 404,
        code: 'E_NOT_FOUND',
      });
      expect(await failure(t.admin.revokeToken('../tokens'))).toEqual({ status: 400, code: 'E_VALIDATION' });

      // Every active admin token but one revoked: the last one stays, so tokens stay manageable.
      const { tokens } = await t.admin.listTokens();
      for (const admin of tokens.filter(
        (x) => x.role === 'admin' && x.state === 'active' && x.id !== 'bootstrap-admin',
      )) {
        await t.admin.revokeToken(admin.id);
      }
      expect(await failure(t.admin.revokeToken('bootstrap-admin'))).toEqual({
        status: 409,
        code: 'E_INVALID_STATE',
      });
      // A never-expiring token is possible, on request only.
      expect(
        (await t.admin.createToken({ name: 'ci-bot', role: 'publisher', expiresInDays: null })).expiresAt,
      ).toBeNull();
    });
  });
}

describe('bootstrap tokens on a database from before the admin role', () => {
  it('adds a bootstrap-admin token, once, and writes it beside the others', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edgeship-upgrade-'));
    const storage = await openStorage({ dataDir: dir });
    try {
      const file = join(dir, 'tokens.json');
      const old: Record<string, string> = {};
      for (const role of ['publisher', 'operator', 'viewer'] as const) {
        old[role] = await createToken(storage.registry, `bootstrap-${role}`, role, {
          id: `bootstrap-${role}`,
        });
      }
      await writeFile(file, JSON.stringify(old));
      const tokens = await bootstrapTokens(storage.registry, file);
      expect(tokens).toEqual({ ...old, admin: expect.stringMatching(/^es_adm_/) });
      expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(tokens);
      expect(await bootstrapTokens(storage.registry, file)).toEqual(tokens);
      expect((await storage.registry.listTokens()).map((x) => x.role).sort()).toEqual([
        'admin',
        'operator',
        'publisher',
        'viewer',
      ]);
    } finally {
      await closeStorage(storage);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
