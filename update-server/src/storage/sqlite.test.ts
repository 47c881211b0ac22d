import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededBytes } from '@edgeship/protocol';
import SqliteDatabase from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { BLOBS_DIR, openStorage, SQLITE_FILE, type Storage } from './open.ts';
import { channelModel, closeStorage, openedStore, registrySuite, rolloutRecord } from './registry.suite.ts';

const tempDirs: string[] = [];
async function freshDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeship-sqlite-'));
  tempDirs.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

registrySuite('SQLite + blob files', async () => {
  const dataDir = await freshDataDir();
  return openedStore(await openStorage({ dataDir }));
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('SQLite storage on disk', () => {
  it('keeps every record and blob across close and reopen', async () => {
    const dataDir = await freshDataDir();
    const first = await openStorage({ dataDir });
    const bytes = seededBytes(200_000, 11);
    await first.registry.transaction(async (tx) => {
      await tx.upsertChannelModel(channelModel());
      await tx.insertRollout(rolloutRecord('r1', { shareBps: 1000, salt: 'salt' }));
      await tx.insertManifest({
        app: 'app',
        channel: 'stable',
        version: 1,
        body: '{"v":1}',
        etag: '"e1"',
        createdAt: '2025-01-01T00:00:00.000Z',
      });
      await tx.appendAudit({
        actor: 'operator',
        action: 'rollout.create',
        app: 'app',
        channel: 'stable',
        model: 'kws',
        details: { shareBps: 1000 },
      });
      await tx.insertToken({
        id: 't1',
        name: 'ci',
        role: 'publisher',
        hash: 'a'.repeat(64),
        createdAt: '2025-01-01T00:00:00.000Z',
        expiresAt: null,
        revokedAt: null,
      });
    });
    await first.blobs.put(sha256(bytes), bytes);
    const before = await snapshot(first);
    await closeStorage(first);

    const second = await openStorage({ dataDir });
    try {
      const after = await snapshot(second);
      expect(after).toEqual(before);
      expect(after.rollouts).toHaveLength(1);
      expect(after.audit).toHaveLength(1);
      expect(after.tokens).toHaveLength(1);
      expect(after.manifest?.version).toBe(1);
      expect(sha256((await second.blobs.get(sha256(bytes)))!)).toBe(sha256(bytes));
      // Migrations found nothing left to do, and the store still takes writes.
      await second.registry.insertManifest({
        app: 'app',
        channel: 'stable',
        version: 2,
        body: '{"v":2}',
        etag: '"e2"',
        createdAt: '2025-01-02T00:00:00.000Z',
      });
      expect((await second.registry.latestManifest('app', 'stable'))?.version).toBe(2);
    } finally {
      await closeStorage(second);
    }
  });

  it('is a real file in WAL mode', async () => {
    const dataDir = await freshDataDir();
    const storage = await openStorage({ dataDir });
    await storage.registry.insertManifest({
      app: 'a',
      channel: 'c',
      version: 1,
      body: '{}',
      etag: '"e"',
      createdAt: '2025-01-01T00:00:00.000Z',
    });
    // A second connection, as a backup tool would open it: WAL is recorded in the file itself.
    const probe = new SqliteDatabase(join(dataDir, SQLITE_FILE), { readonly: true });
    try {
      expect(probe.pragma('journal_mode', { simple: true })).toBe('wal');
      // WAL lets a reader see committed data while the server holds its connection open.
      expect(probe.prepare('select count(*) as n from manifests').get()).toEqual({ n: 1 });
    } finally {
      probe.close();
      await closeStorage(storage);
    }
    expect(await readdir(dataDir)).toContain(SQLITE_FILE);
  });

  it('never shows a partial blob that a crashed write left behind', async () => {
    const dataDir = await freshDataDir();
    const storage = await openStorage({ dataDir });
    try {
      const bytes = seededBytes(300_000, 12);
      const hash = sha256(bytes);
      // What a process killed between writing and renaming leaves: a temp file with half the bytes
      // next to where the chunk would go (FsBlobStore's naming: `.<hash>.<pid>.<random>.tmp`).
      const folder = join(dataDir, BLOBS_DIR, hash.slice(0, 2));
      await mkdir(folder, { recursive: true });
      await writeFile(join(folder, `.${hash}.99999.abcdef012345.tmp`), bytes.subarray(0, 150_000));
      expect(await storage.blobs.get(hash)).toBeNull();
      expect(await storage.blobs.size(hash)).toBeNull();
      expect(await storage.blobs.missing([hash])).toEqual([hash]);

      // The upload is retried: the complete chunk appears, the litter does not get in the way.
      await storage.blobs.put(hash, bytes);
      expect(await storage.blobs.size(hash)).toBe(300_000);
      expect(sha256((await storage.blobs.get(hash))!)).toBe(hash);
    } finally {
      await closeStorage(storage);
    }
  });

  it('leaves no temp file behind after a refused (wrong hash) or successful put', async () => {
    const dataDir = await freshDataDir();
    const storage = await openStorage({ dataDir });
    try {
      const bytes = seededBytes(5000, 13);
      await expect(storage.blobs.put(sha256(seededBytes(5000, 14)), bytes)).rejects.toMatchObject({
        code: 'E_HASH',
      });
      await storage.blobs.put(sha256(bytes), bytes);
      const files = (await readdir(join(dataDir, BLOBS_DIR), { recursive: true })).map(String);
      expect(files.sort()).toEqual([
        sha256(bytes).slice(0, 2),
        join(sha256(bytes).slice(0, 2), sha256(bytes)),
      ]);
    } finally {
      await closeStorage(storage);
    }
  });
});

async function snapshot({ registry, blobs: _ }: Storage) {
  return {
    channelModels: await registry.listChannelModels('app', 'stable'),
    rollouts: await registry.listRollouts(),
    audit: await registry.listAudit({ limit: 100 }),
    manifest: await registry.latestManifest('app', 'stable'),
    tokens: await registry.listTokens(),
    channels: await registry.listChannels(),
  };
}
