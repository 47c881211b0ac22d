import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage } from '../storage/open.ts';
import { createTestSchema, type TestSchema } from '../storage/registry.suite.ts';
import { type AlertEpisode, AlertStore } from './store.ts';

const episode = (id: string, state: AlertEpisode['state']): AlertEpisode => ({
  app: 'a',
  channel: 'c',
  model: 'm',
  rule: 'drift',
  episode: id,
  state,
  version: '1.0.0',
  firedAt: '2026-12-01T00:00:00.000Z',
  resolvedAt: state === 'resolved' ? '2026-12-01T01:00:00.000Z' : null,
  evidence: { id },
});

describe.each(['sqlite', 'postgres'] as const)('alert episodes on %s', (dialect) => {
  let dir: string;
  let schema: TestSchema | undefined;
  let storage: Awaited<ReturnType<typeof openStorage>>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgeship-alert-store-'));
    schema = dialect === 'postgres' ? await createTestSchema() : undefined;
    storage = await openStorage({ dataDir: dir, databaseUrl: schema?.url });
  });
  afterAll(async () => {
    await storage?.registry.close();
    await storage?.blobs.close();
    await schema?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('lets exactly one of two writers open, resolve or reopen an episode ', async () => {
    // Two monitors (a leader and the one that replaced it) over one database judge the same change.
    const [one, two] = [new AlertStore(storage.db), new AlertStore(storage.db)];
    const won = await Promise.all([
      one.transition(null, episode('e1', 'firing')),
      two.transition(null, episode('e2', 'firing')),
    ]);
    expect(won.filter(Boolean)).toHaveLength(1);
    const winner = won[0] ? 'e1' : 'e2';
    const [open] = await one.episodes('a', 'c');
    expect(open).toMatchObject({ episode: winner, state: 'firing', evidence: { id: winner } });

    const resolved = { ...open!, state: 'resolved' as const, resolvedAt: '2026-12-01T01:00:00.000Z' };
    expect(await one.transition(open!, resolved)).toBe(true);
    expect(await two.transition(open!, resolved)).toBe(false); // it read the firing row: stale

    expect(await two.transition(resolved, episode('e3', 'firing'))).toBe(true);
    expect(await one.transition(resolved, episode('e4', 'firing'))).toBe(false);
    expect((await two.episodes('a', 'c')).map((e) => [e.episode, e.state])).toEqual([['e3', 'firing']]);
  });
});
