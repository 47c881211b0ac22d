import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openStorage, SQLITE_FILE } from './open.ts';
import { WalCheckpointer } from './wal-checkpointer.ts';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function walDatabase() {
  const dir = await mkdtemp(join(tmpdir(), 'edgeship-wal-'));
  dirs.push(dir);
  const file = join(dir, 'db.sqlite');
  const db = new SqliteDatabase(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  // No commit-time checkpoint: whatever reaches the database file, the checkpointer copied there.
  db.pragma('wal_autocheckpoint = 0');
  db.exec('create table t (id integer primary key, body blob)');
  return { file, db };
}

const writeRows = (db: SqliteDatabase.Database, from: number, n: number) => {
  const insert = db.prepare('insert into t (id, body) values (?, randomblob(3000))');
  db.transaction(() => {
    for (let i = from; i < from + n; i++) insert.run(i);
  })();
};

const waitFor = async (check: () => Promise<boolean>, ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
};

describe('WAL checkpointer (a worker thread)', () => {
  it('copies committed pages into the database file while the writer only appends', async () => {
    const { file, db } = await walDatabase();
    const checkpointer = new WalCheckpointer(file, 20);
    await checkpointer.ready;
    const before = (await stat(file)).size;
    writeRows(db, 0, 500); // ~1.5 MB, far past a few pages
    // Only the checkpointer writes the main file here (autocheckpoint is off on the writer).
    expect(await waitFor(async () => (await stat(file)).size > before + 1_000_000, 10_000)).toBe(true);
    // Writes keep going while it runs; the rows are all there, from the writer's own connection.
    writeRows(db, 500, 200);
    const pages = await checkpointer.stop();
    expect(pages).toBeGreaterThan(300);
    expect(db.prepare('select count(*) as n from t').get()).toEqual({ n: 700 });
    db.close();
    const reopened = new SqliteDatabase(file, { readonly: true });
    expect(reopened.prepare('select count(*) as n from t').get()).toEqual({ n: 700 });
    reopened.close();
  });

  it('without it the writer, autocheckpoint off, leaves the database file as it was', async () => {
    // The control for the test above: what grows the file there is the checkpointer.
    const { file, db } = await walDatabase();
    const before = (await stat(file)).size;
    writeRows(db, 0, 500);
    await new Promise((r) => setTimeout(r, 200));
    expect((await stat(file)).size).toBe(before);
    db.close();
  });

  it('runs under the server storage and stops when it closes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edgeship-wal-'));
    dirs.push(dir);
    const storage = await openStorage({ dataDir: dir });
    await expect(stat(join(dir, `${SQLITE_FILE}-wal`))).resolves.toBeTruthy();
    await storage.registry.close();
    await storage.blobs.close();
    // Closed cleanly: the checkpointer's connection was closed first (had it stayed open, the
    // server's close would not be the last connection's and would leave the WAL in place).
    await expect(stat(join(dir, `${SQLITE_FILE}-wal`))).rejects.toThrow();
  });
});
