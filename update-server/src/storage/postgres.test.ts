import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededBytes } from '@edgeship/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { bootstrapTokens } from '../auth/tokens.ts';
import { openStorage, type Storage } from './open.ts';
import {
  closeStorage,
  createTestSchema,
  openedStore,
  registrySuite,
  requirePostgres,
  type TestSchema,
} from './registry.suite.ts';

// Not a beforeAll: a failed hook would report every test as skipped. PostgreSQL is a required
// part of this suite, so when it is unreachable each test fails with requirePostgres' message.
let dataDir: string | undefined;
async function scratchDir(): Promise<string> {
  dataDir ??= await mkdtemp(join(tmpdir(), 'edgeship-pg-'));
  return dataDir;
}
afterAll(async () => {
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it('reaches PostgreSQL at DATABASE_URL (or the local default)', async () => {
  await expect(requirePostgres()).resolves.toBeUndefined();
});

registrySuite('PostgreSQL + bytea chunks', async () => {
  const schema = await createTestSchema();
  const storage = await openStorage({ dataDir: await scratchDir(), databaseUrl: schema.url });
  return openedStore(storage, () => schema.drop());
});

describe('PostgreSQL shared by several server processes', () => {
  let schema: TestSchema | undefined;
  let pair: Promise<[Storage, Storage]> | undefined;
  const logs: string[][] = [[], []];
  // Two processes starting together on an empty schema both run the migrations. Opened by the
  // first test that needs them (not in beforeAll, whose failure would skip rather than fail).
  const instances = () =>
    (pair ??= (async () => {
      schema = await createTestSchema();
      const dir = await scratchDir();
      const { url } = schema;
      return (await Promise.all(
        logs.map((log) => openStorage({ dataDir: dir, databaseUrl: url, log: (m) => log.push(m) })),
      )) as [Storage, Storage];
    })());
  afterAll(async () => {
    for (const s of (await pair?.catch(() => undefined)) ?? []) {
      await closeStorage(s);
    }
    await schema?.drop();
  });

  it('runs migrations from two instances at once without error, applying them once', async () => {
    await instances();
    const applied = logs.map((log) => log.filter((m) => m.includes('applied migration')).length);
    // One instance applied every migration, the other found nothing left to do.
    const [fewer, more] = applied.sort((x, y) => x - y);
    expect(fewer).toBe(0);
    expect(more).toBeGreaterThanOrEqual(2); // 0001_registry, 0002_telemetry, …
    expect(logs.flat().filter((m) => m.includes(`schema ${schema!.name}`))).toHaveLength(2);
  });

  it("sees the other instance's writes: registry rows and chunks", async () => {
    const [a, b] = await instances();
    await a.registry.insertManifest({
      app: 'app',
      channel: 'stable',
      version: 1,
      body: '{"from":"a"}',
      etag: '"a1"',
      createdAt: '2025-01-01T00:00:00.000Z',
    });
    expect(await b.registry.latestManifest('app', 'stable')).toMatchObject({
      version: 1,
      body: '{"from":"a"}',
    });
    await b.registry.appendAudit({
      actor: 'b',
      action: 'x',
      app: 'app',
      channel: 'stable',
      model: null,
      details: { from: 'b' },
    });
    expect((await a.registry.listAudit({ limit: 10 })).map((e) => e.details)).toEqual([{ from: 'b' }]);

    const bytes = seededBytes(100_000, 21);
    const hash = createHash('sha256').update(bytes).digest('hex');
    await a.blobs.put(hash, bytes);
    expect(await b.blobs.missing([hash])).toEqual([]);
    expect(Buffer.compare(Buffer.from((await b.blobs.get(hash))!), Buffer.from(bytes))).toBe(0);
    // The same chunk uploaded through the other process is a no-op, not an error.
    await b.blobs.put(hash, bytes);
  });

  it('serialises next-version writers across the two instances (lockChannel is a row lock)', async () => {
    const [a, b] = await instances();
    const writer = (s: Storage, name: string) =>
      s.registry.transaction(async (tx) => {
        await tx.lockChannel('app', 'race');
        const latest = await tx.latestManifest('app', 'race');
        await new Promise((resolve) => setTimeout(resolve, 15));
        const version = (latest?.version ?? 0) + 1;
        await tx.insertManifest({
          app: 'app',
          channel: 'race',
          version,
          body: `{"writer":"${name}"}`,
          etag: `"${name}"`,
          createdAt: '2025-01-01T00:00:00.000Z',
        });
        return version;
      });
    const versions = await Promise.all([
      writer(a, 'a1'),
      writer(b, 'b1'),
      writer(a, 'a2'),
      writer(b, 'b2'),
      writer(a, 'a3'),
      writer(b, 'b3'),
    ]);
    expect([...versions].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6]);
    expect((await a.registry.latestManifest('app', 'race'))?.version).toBe(6);
  });
});

describe('bootstrap tokens on a shared database', () => {
  it('are created once when two instances bootstrap at the same moment', async () => {
    const schema = await createTestSchema();
    const dir = await scratchDir();
    const [a, b] = await Promise.all(
      [1, 2].map(() => openStorage({ dataDir: dir, databaseUrl: schema.url })),
    );
    try {
      // Separate data directories, as on two machines: only the winner has the plain tokens.
      const results = await Promise.all([
        bootstrapTokens(a!.registry, join(dir, 'a-tokens.json')),
        bootstrapTokens(b!.registry, join(dir, 'b-tokens.json')),
      ]);
      expect(results.filter((r) => r !== null)).toHaveLength(1);
      const stored = await a!.registry.listTokens();
      expect(stored.map((t) => t.role).sort()).toEqual(['admin', 'operator', 'publisher', 'viewer']);
      // A restart finds the tokens and creates no more: the winner reads its file back, the
      // loser (either one, whichever lost the race) has no file and gets null.
      const winner = results[0] !== null ? 0 : 1;
      const files = [join(dir, 'a-tokens.json'), join(dir, 'b-tokens.json')];
      expect(await bootstrapTokens(b!.registry, files[winner]!)).toEqual(results[winner]);
      expect(await bootstrapTokens(b!.registry, files[1 - winner]!)).toBeNull();
      expect(await b!.registry.listTokens()).toHaveLength(4);
    } finally {
      for (const s of [a!, b!]) {
        await closeStorage(s);
      }
      await schema.drop();
    }
  });
});

describe('test schema helper', () => {
  it('gives each run its own schema and drops it afterwards', async () => {
    const schema = await createTestSchema();
    expect(schema.name).toMatch(/^es_test_[0-9a-f]{16}$/);
    const storage = await openStorage({ dataDir: await scratchDir(), databaseUrl: schema.url });
    await closeStorage(storage);
    expect(await schema.exists()).toBe(true);
    await schema.drop();
    expect(await schema.exists()).toBe(false);
  });
});
