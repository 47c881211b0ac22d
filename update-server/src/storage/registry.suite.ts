import { createHash, randomBytes } from 'node:crypto';
import {
  ConflictError,
  EdgeshipError,
  generateSigningKey,
  type SignedRelease,
  type SigningKeyPair,
  seededBytes,
} from '@edgeship/protocol';
import pg from 'pg';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeRelease } from '../../../test/support/server.ts';
import type {
  BlobStore,
  ChannelModelRecord,
  ManifestRecord,
  RegistryStore,
  ReleaseRecord,
  RolloutRecord,
  TokenRecord,
} from './types.ts';

export interface OpenedStore {
  registry: RegistryStore;
  blobs: BlobStore;
  /** Closes both stores (if the test did not) and removes what `open` created. */
  cleanup(): Promise<void>;
}

/** Closes a storage's registry and blobs, as every test that opens one does last. */
export async function closeStorage(storage: { registry: RegistryStore; blobs: BlobStore }): Promise<void> {
  await storage.registry.close();
  await storage.blobs.close();
}

/** The suite's store over an opened storage; `removeRest` removes what opening it created. */
export function openedStore(
  storage: { registry: RegistryStore; blobs: BlobStore },
  removeRest: () => Promise<void> = async () => {},
): OpenedStore {
  const { registry, blobs } = storage;
  return {
    registry,
    blobs,
    async cleanup() {
      await closeStorage(storage);
      await removeRest();
    },
  };
}

/** `kws` of app/stable, 1.0.0 in production since 2025-01-01; `fields` replace any field. */
export function channelModel(fields: Partial<ChannelModelRecord> = {}): ChannelModelRecord {
  return {
    app: 'app',
    channel: 'stable',
    model: 'kws',
    production: '1.0.0',
    previousProduction: null,
    updatedAt: '2025-01-01T00:00:00.000Z',
    ...fields,
  };
}

/** Rollout `id` of kws 1.1.0 against 1.0.0 on app/stable: an active 5% canary; `fields` replace any field. */
export function rolloutRecord(id: string, fields: Partial<RolloutRecord> = {}): RolloutRecord {
  return {
    id,
    app: 'app',
    channel: 'stable',
    model: 'kws',
    release: '1.1.0',
    control: '1.0.0',
    mode: 'canary',
    shareBps: 500,
    salt: `salt-${id}`,
    state: 'active',
    reason: null,
    createdBy: 'operator',
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    ...fields,
  };
}

/**
 * The storage contract, run against every implementation (SQLite + files, PostgreSQL + bytea).
 * `open` gives each test an empty store, so every assertion can be about exact contents.
 */
export function registrySuite(name: string, open: () => Promise<OpenedStore>): void {
  describe(`storage contract: ${name}`, () => {
    let store: OpenedStore | undefined;
    let registry: RegistryStore;
    let blobs: BlobStore;
    let publisher: SigningKeyPair;

    beforeAll(async () => {
      publisher = await generateSigningKey();
    });
    beforeEach(async () => {
      store = undefined;
      store = await open();
      ({ registry, blobs } = store);
    });
    afterEach(async () => {
      await store?.cleanup();
    });

    async function release(model: string, version: string, createdAt: string): Promise<ReleaseRecord> {
      const signed: SignedRelease = await makeRelease(publisher, seededBytes(64, version.length + 7), {
        model,
        version,
      });
      return {
        model,
        version,
        format: 'onnx',
        stage: 'staging',
        signed,
        totalBytes: 64,
        metrics: { accuracy: 0.91, p50Ms: 3.5 },
        lineage: { sourceCommit: 'abc123', datasetHash: 'sha256:ff', parameters: { epochs: 3, lr: 0.01 } },
        modelCard: `# ${model} ${version}\nA model card with ünïcode.`,
        createdBy: 'publisher-token',
        createdAt,
      };
    }

    describe('releases', () => {
      it('stores a release and reads it back unchanged', async () => {
        const record = await release('kws', '1.0.0', '2025-01-01T00:00:00.000Z');
        await registry.insertRelease(record);
        expect(await registry.getRelease('kws', '1.0.0')).toEqual(record);
        expect(await registry.getRelease('kws', '9.9.9')).toBeNull();
        expect(await registry.getRelease('nope', '1.0.0')).toBeNull();
      });

      it('refuses a second release with the same model and version (ConflictError), keeping the first', async () => {
        const first = await release('kws', '1.0.0', '2025-01-01T00:00:00.000Z');
        await registry.insertRelease(first);
        const second = { ...first, modelCard: 'an impostor', createdAt: '2025-02-01T00:00:00.000Z' };
        const error = await registry.insertRelease(second).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConflictError);
        expect((error as ConflictError).code).toBe('E_CONFLICT');
        expect((await registry.getRelease('kws', '1.0.0'))?.modelCard).toBe(first.modelCard);
      });

      it('lists releases newest first, optionally of one model, and the distinct models', async () => {
        await registry.insertRelease(await release('vad', '1.0.0', '2025-01-01T00:00:00.000Z'));
        await registry.insertRelease(await release('kws', '1.0.0', '2025-01-02T00:00:00.000Z'));
        await registry.insertRelease(await release('kws', '1.1.0', '2025-01-03T00:00:00.000Z'));
        const all = await registry.listReleases();
        expect(all.map((r) => `${r.model}@${r.version}`)).toEqual(['kws@1.1.0', 'kws@1.0.0', 'vad@1.0.0']);
        const kws = await registry.listReleases('kws');
        expect(kws.map((r) => r.version)).toEqual(['1.1.0', '1.0.0']);
        expect(await registry.listReleases('none')).toEqual([]);
        expect(await registry.listModels()).toEqual(['kws', 'vad']);
      });

      it('changes a release stage, and reports E_NOT_FOUND for an unknown release', async () => {
        await registry.insertRelease(await release('kws', '1.0.0', '2025-01-01T00:00:00.000Z'));
        await registry.setStage('kws', '1.0.0', 'production');
        expect((await registry.getRelease('kws', '1.0.0'))?.stage).toBe('production');
        await registry.setStage('kws', '1.0.0', 'archived');
        expect((await registry.getRelease('kws', '1.0.0'))?.stage).toBe('archived');
        const error = await registry.setStage('kws', '2.0.0', 'production').catch((e: unknown) => e);
        expect(error).toBeInstanceOf(EdgeshipError);
        expect((error as EdgeshipError).code).toBe('E_NOT_FOUND');
      });
    });

    describe('channel models', () => {
      const base = channelModel({ production: null });

      it('inserts, then updates in place on the same app/channel/model', async () => {
        expect(await registry.getChannelModel('app', 'stable', 'kws')).toBeNull();
        await registry.upsertChannelModel(base);
        expect(await registry.getChannelModel('app', 'stable', 'kws')).toEqual(base);
        const promoted = {
          ...base,
          production: '1.1.0',
          previousProduction: '1.0.0',
          updatedAt: '2025-01-02T00:00:00.000Z',
        };
        await registry.upsertChannelModel(promoted);
        expect(await registry.getChannelModel('app', 'stable', 'kws')).toEqual(promoted);
        expect(await registry.listChannelModels('app', 'stable')).toEqual([promoted]);
      });

      it("lists one channel's models by name, and every channel that has models or manifests", async () => {
        await registry.upsertChannelModel({ ...base, model: 'vad' });
        await registry.upsertChannelModel(base);
        await registry.upsertChannelModel({ ...base, channel: 'beta' });
        await registry.insertManifest(manifest('other', 'stable', 1));
        expect((await registry.listChannelModels('app', 'stable')).map((m) => m.model)).toEqual([
          'kws',
          'vad',
        ]);
        expect(await registry.listChannelModels('app', 'nightly')).toEqual([]);
        expect(await registry.listChannels()).toEqual([
          { app: 'app', channel: 'beta' },
          { app: 'app', channel: 'stable' },
          { app: 'other', channel: 'stable' },
        ]);
      });
    });

    describe('rollouts', () => {
      it('inserts and reads a rollout; a duplicate id is a ConflictError', async () => {
        const r = rolloutRecord('r1', { control: null, mode: 'shadow' });
        await registry.insertRollout(r);
        expect(await registry.getRollout('r1')).toEqual(r);
        expect(await registry.getRollout('r2')).toBeNull();
        await expect(registry.insertRollout({ ...r, shareBps: 9999 })).rejects.toBeInstanceOf(ConflictError);
        expect((await registry.getRollout('r1'))?.shareBps).toBe(500);
      });

      it('updates only the patched fields, and reports E_NOT_FOUND for an unknown rollout', async () => {
        const r = rolloutRecord('r1');
        await registry.insertRollout(r);
        await registry.updateRollout('r1', { shareBps: 2500, updatedAt: '2025-01-02T00:00:00.000Z' });
        expect(await registry.getRollout('r1')).toEqual({
          ...r,
          shareBps: 2500,
          updatedAt: '2025-01-02T00:00:00.000Z',
        });
        await registry.updateRollout('r1', { state: 'halted', shareBps: 0, reason: 'error rate' });
        expect(await registry.getRollout('r1')).toMatchObject({
          state: 'halted',
          shareBps: 0,
          reason: 'error rate',
        });
        await registry.updateRollout('r1', {});
        for (const patch of [{ shareBps: 1 }, {}]) {
          const error = await registry.updateRollout('missing', patch).catch((e: unknown) => e);
          expect((error as EdgeshipError).code).toBe('E_NOT_FOUND');
        }
      });

      it("stores a multi-arm rollout's arms and updates them; a rollout without arms reads without the field", async () => {
        const arms = [
          { release: '1.1.0', shareBps: 2000 },
          { release: '1.2.0', shareBps: 3000 },
        ];
        const r = rolloutRecord('r1', { shareBps: 5000, arms });
        await registry.insertRollout(r);
        expect(await registry.getRollout('r1')).toEqual(r);
        const moved = [
          { release: '1.1.0', shareBps: 1000 },
          { release: '1.2.0', shareBps: 4000 },
        ];
        await registry.updateRollout('r1', { arms: moved });
        expect((await registry.getRollout('r1'))?.arms).toEqual(moved);
        await registry.insertRollout(rolloutRecord('r2'));
        expect(await registry.getRollout('r2')).not.toHaveProperty('arms');
      });

      it('lists rollouts newest first, filtered by app, channel, model and states', async () => {
        await registry.insertRollout(rolloutRecord('a', { createdAt: '2025-01-01T00:00:00.000Z' }));
        await registry.insertRollout(
          rolloutRecord('b', { createdAt: '2025-01-02T00:00:00.000Z', state: 'halted', model: 'vad' }),
        );
        await registry.insertRollout(
          rolloutRecord('c', { createdAt: '2025-01-03T00:00:00.000Z', channel: 'beta' }),
        );
        await registry.insertRollout(
          rolloutRecord('d', { createdAt: '2025-01-04T00:00:00.000Z', app: 'other', state: 'promoted' }),
        );
        const ids = async (query?: Parameters<RegistryStore['listRollouts']>[0]) =>
          (await registry.listRollouts(query)).map((r) => r.id);
        expect(await ids()).toEqual(['d', 'c', 'b', 'a']);
        expect(await ids({ app: 'app' })).toEqual(['c', 'b', 'a']);
        expect(await ids({ app: 'app', channel: 'stable' })).toEqual(['b', 'a']);
        expect(await ids({ model: 'vad' })).toEqual(['b']);
        expect(await ids({ states: ['active'] })).toEqual(['c', 'a']);
        expect(await ids({ states: ['halted', 'promoted'] })).toEqual(['d', 'b']);
        expect(await ids({ app: 'app', channel: 'stable', model: 'kws', states: ['active'] })).toEqual(['a']);
        expect(await ids({ states: [] })).toEqual([]);
      });
    });

    describe('audit trail', () => {
      const entry = (action: string, fields: Partial<{ app: string | null; model: string | null }> = {}) => ({
        actor: 'operator',
        action,
        app: 'app' as string | null,
        channel: 'stable' as string | null,
        model: 'kws' as string | null,
        details: { from: 100, to: 500, nested: { list: [1, 'two', null] } },
        ...fields,
      });

      it('appends entries with growing ids and the given or current time', async () => {
        const before = Date.now();
        const first = await registry.appendAudit(entry('rollout.create'));
        const second = await registry.appendAudit({
          ...entry('rollout.share'),
          at: '2024-06-01T00:00:00.000Z',
        });
        expect(second.id).toBeGreaterThan(first.id);
        expect(Date.parse(first.at)).toBeGreaterThanOrEqual(before - 1000);
        expect(second.at).toBe('2024-06-01T00:00:00.000Z');
        expect(first).toEqual({ id: first.id, at: first.at, ...entry('rollout.create') });
      });

      it('lists newest first, pages with before/limit, filters, and never rewrites an entry', async () => {
        const written = [];
        written.push(await registry.appendAudit(entry('release.publish', { app: null, model: 'kws' })));
        written.push(await registry.appendAudit(entry('rollout.create')));
        written.push(await registry.appendAudit(entry('rollout.share', { model: 'vad' })));
        written.push(await registry.appendAudit(entry('rollout.halt', { app: 'other' })));
        const snapshot = await registry.listAudit({ limit: 100 });
        expect(snapshot).toEqual([...written].reverse());

        const page1 = await registry.listAudit({ limit: 2 });
        expect(page1.map((e) => e.action)).toEqual(['rollout.halt', 'rollout.share']);
        const page2 = await registry.listAudit({ limit: 2, before: page1[1]!.id });
        expect(page2.map((e) => e.action)).toEqual(['rollout.create', 'release.publish']);
        expect(await registry.listAudit({ limit: 2, before: page2[1]!.id })).toEqual([]);
        expect(await registry.listAudit({ limit: 0 })).toEqual([]);

        expect((await registry.listAudit({ limit: 10, app: 'app' })).map((e) => e.action)).toEqual([
          'rollout.share',
          'rollout.create',
        ]);
        expect((await registry.listAudit({ limit: 10, model: 'kws' })).map((e) => e.action)).toEqual([
          'rollout.halt',
          'rollout.create',
          'release.publish',
        ]);
        expect(
          (await registry.listAudit({ limit: 10, app: 'app', channel: 'stable', model: 'vad' })).map(
            (e) => e.action,
          ),
        ).toEqual(['rollout.share']);
        expect(await registry.listAudit({ limit: 10, channel: 'nightly' })).toEqual([]);

        // Later activity (including a rolled-back transaction) leaves earlier entries as they were.
        await registry.appendAudit(entry('rollout.promote'));
        await registry
          .transaction(async (tx) => {
            await tx.appendAudit(entry('never.committed'));
            throw new Error('abort');
          })
          .catch(() => {});
        const after = await registry.listAudit({ limit: 100 });
        expect(after.map((e) => e.action)).toEqual([
          'rollout.promote',
          'rollout.halt',
          'rollout.share',
          'rollout.create',
          'release.publish',
        ]);
        expect(after.slice(1)).toEqual(snapshot);
      });
    });

    describe('manifests', () => {
      it('returns the highest version; inserting an existing version is a ConflictError', async () => {
        expect(await registry.latestManifest('app', 'stable')).toBeNull();
        expect(await registry.latestManifestVersion('app', 'stable')).toBeNull();
        const v1 = manifest('app', 'stable', 1);
        const v2 = manifest('app', 'stable', 2);
        await registry.insertManifest(v1);
        expect(await registry.latestManifest('app', 'stable')).toEqual(v1);
        await registry.insertManifest(v2);
        await registry.insertManifest(manifest('app', 'beta', 7));
        expect(await registry.latestManifest('app', 'stable')).toEqual(v2);
        expect((await registry.latestManifest('app', 'beta'))?.version).toBe(7);

        // Versions compare as numbers, not text ("10" > "9").
        for (let v = 3; v <= 10; v++) await registry.insertManifest(manifest('app', 'stable', v));
        expect((await registry.latestManifest('app', 'stable'))?.version).toBe(10);
        expect(await registry.latestManifestVersion('app', 'stable')).toBe(10);
        expect(await registry.latestManifestVersion('app', 'beta')).toBe(7);

        const error = await registry
          .insertManifest({ ...manifest('app', 'stable', 2), body: '{"forged":true}' })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConflictError);
        expect((error as ConflictError).code).toBe('E_CONFLICT');
        expect((await registry.latestManifest('app', 'stable'))?.version).toBe(10);
      });
    });

    describe('tokens', () => {
      const token = (id: string, fields: Partial<TokenRecord> = {}): TokenRecord => ({
        id,
        name: `token-${id}`,
        role: 'operator',
        hash: sha256(`secret-${id}`),
        createdAt: '2025-01-01T00:00:00.000Z',
        expiresAt: null,
        revokedAt: null,
        ...fields,
      });

      it('finds a token by hash, lists newest first, and refuses a duplicate id or hash', async () => {
        const a = token('a', { role: 'publisher', expiresAt: '2030-01-01T00:00:00.000Z' });
        const b = token('b', {
          role: 'viewer',
          createdAt: '2025-01-02T00:00:00.000Z',
          revokedAt: '2025-01-03T00:00:00.000Z',
        });
        await registry.insertToken(a);
        await registry.insertToken(b);
        expect(await registry.findTokenByHash(a.hash)).toEqual(a);
        expect(await registry.findTokenByHash(b.hash)).toEqual(b);
        expect(await registry.findTokenByHash(sha256('unknown'))).toBeNull();
        expect(await registry.listTokens()).toEqual([b, a]);
        await expect(registry.insertToken(token('a'))).rejects.toBeInstanceOf(ConflictError);
        await expect(registry.insertToken(token('c', { hash: a.hash }))).rejects.toBeInstanceOf(
          ConflictError,
        );
        expect((await registry.listTokens()).map((t) => t.id)).toEqual(['b', 'a']);
      });

      it('gets a token by id and revokes it exactly once, keeping every other field', async () => {
        const a = token('a', { role: 'admin' });
        await registry.insertToken(a);
        expect(await registry.getToken('a')).toEqual(a);
        expect(await registry.getToken('nope')).toBeNull();
        expect(await registry.revokeToken('a', '2025-02-01T00:00:00.000Z')).toBe(true);
        expect(await registry.revokeToken('a', '2025-03-01T00:00:00.000Z')).toBe(false);
        expect(await registry.revokeToken('nope', '2025-03-01T00:00:00.000Z')).toBe(false);
        const revoked = { ...a, revokedAt: '2025-02-01T00:00:00.000Z' };
        expect(await registry.getToken('a')).toEqual(revoked);
        expect(await registry.findTokenByHash(a.hash)).toEqual(revoked);
      });
    });

    describe('transactions', () => {
      it('commits everything a transaction wrote, and returns its result', async () => {
        const record = await release('kws', '1.0.0', '2025-01-01T00:00:00.000Z');
        const result = await registry.transaction(async (tx) => {
          await tx.insertRelease(record);
          await tx.insertManifest(manifest('app', 'stable', 1));
          // A transaction reads its own writes.
          expect(await tx.getRelease('kws', '1.0.0')).toEqual(record);
          return 'done';
        });
        expect(result).toBe('done');
        expect(await registry.getRelease('kws', '1.0.0')).toEqual(record);
        expect((await registry.latestManifest('app', 'stable'))?.version).toBe(1);
      });

      it('writes nothing when the function throws, and rethrows its error', async () => {
        const record = await release('kws', '1.0.0', '2025-01-01T00:00:00.000Z');
        const boom = new Error('boom');
        const error = await registry
          .transaction(async (tx) => {
            await tx.insertRelease(record);
            await tx.upsertChannelModel(channelModel());
            await tx.appendAudit({
              actor: 'x',
              action: 'release.publish',
              app: null,
              channel: null,
              model: 'kws',
              details: {},
            });
            await tx.insertManifest(manifest('app', 'stable', 1));
            await tx.insertToken({
              id: 't',
              name: 't',
              role: 'viewer',
              hash: sha256('t'),
              createdAt: '2025-01-01T00:00:00.000Z',
              expiresAt: null,
              revokedAt: null,
            });
            throw boom;
          })
          .catch((e: unknown) => e);
        expect(error).toBe(boom);
        expect(await registry.getRelease('kws', '1.0.0')).toBeNull();
        expect(await registry.listReleases()).toEqual([]);
        expect(await registry.getChannelModel('app', 'stable', 'kws')).toBeNull();
        expect(await registry.listAudit({ limit: 10 })).toEqual([]);
        expect(await registry.latestManifest('app', 'stable')).toBeNull();
        expect(await registry.listTokens()).toEqual([]);
      });

      it('rolls back when a write inside conflicts, and the store stays usable', async () => {
        await registry.insertManifest(manifest('app', 'stable', 1));
        const error = await registry
          .transaction(async (tx) => {
            await tx.appendAudit({
              actor: 'x',
              action: 'a',
              app: null,
              channel: null,
              model: null,
              details: {},
            });
            await tx.insertManifest(manifest('app', 'stable', 1));
          })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConflictError);
        expect(await registry.listAudit({ limit: 10 })).toEqual([]);
        await registry.insertManifest(manifest('app', 'stable', 2));
        expect((await registry.latestManifest('app', 'stable'))?.version).toBe(2);
      });

      it('lockChannel serialises concurrent read-latest-then-insert writers: no duplicate, no lost version', async () => {
        const writers = 6;
        await registry.insertManifest(manifest('app', 'stable', 1));
        const nextVersion = (writer: number) =>
          registry.transaction(async (tx) => {
            await tx.lockChannel('app', 'stable');
            const latest = await tx.latestManifest('app', 'stable');
            // Give the other writers every chance to read the same latest version.
            await new Promise((resolve) => setTimeout(resolve, 15));
            const version = (latest?.version ?? 0) + 1;
            await tx.insertManifest({ ...manifest('app', 'stable', version), body: `{"writer":${writer}}` });
            return version;
          });
        const versions = await Promise.all(Array.from({ length: writers }, (_, i) => nextVersion(i)));
        expect([...versions].sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7]);
        const latest = await registry.latestManifest('app', 'stable');
        expect(latest?.version).toBe(writers + 1);
        expect(latest?.body).toBe(`{"writer":${versions.indexOf(writers + 1)}}`);
        // Another channel's lock does not depend on this one's row existing first.
        await registry.transaction((tx) => tx.lockChannel('app', 'never-used-before'));
      });
    });

    describe('blobs', () => {
      it('stores bytes under their SHA-256 and reads them, their size and what is missing', async () => {
        const a = seededBytes(1000, 1);
        const b = seededBytes(2000, 2);
        const [ha, hb] = [sha256(a), sha256(b)];
        expect(await blobs.get(ha)).toBeNull();
        expect(await blobs.size(ha)).toBeNull();
        expect(await blobs.missing([hb, ha])).toEqual([hb, ha]);
        await blobs.put(ha, a);
        expect(Buffer.from((await blobs.get(ha))!)).toEqual(Buffer.from(a));
        expect(await blobs.size(ha)).toBe(1000);
        expect(await blobs.missing([hb, ha, hb])).toEqual([hb, hb]);
        expect(await blobs.missing([])).toEqual([]);
        await blobs.put(hb, b);
        expect(await blobs.missing([ha, hb])).toEqual([]);
        expect(await blobs.size(hb)).toBe(2000);
      });

      it('stores a chunk streamed in pieces, and refuses one that is too long, empty or hashes wrong', async () => {
        const bytes = seededBytes(300_000, 7);
        async function* pieces(of: Uint8Array, size = 65_536) {
          for (let offset = 0; offset < of.length; offset += size) yield of.slice(offset, offset + size);
        }
        expect(await blobs.putStream(sha256(bytes), pieces(bytes), 1 << 20)).toBe(300_000);
        expect(sha256((await blobs.get(sha256(bytes)))!)).toBe(sha256(bytes));
        // Storing it again reads the body and keeps the stored chunk.
        expect(await blobs.putStream(sha256(bytes), pieces(bytes), 1 << 20)).toBe(300_000);

        const other = seededBytes(300_000, 8);
        const codeOf = (p: Promise<unknown>) => p.catch((e: unknown) => (e as EdgeshipError).code);
        expect(await codeOf(blobs.putStream(sha256(other), pieces(other), 200_000))).toBe('E_LENGTH');
        expect(await codeOf(blobs.putStream(sha256(other), pieces(new Uint8Array(0)), 1 << 20))).toBe(
          'E_LENGTH',
        );
        expect(await codeOf(blobs.putStream(sha256(other), pieces(bytes), 1 << 20))).toBe('E_HASH');
        expect(await blobs.size(sha256(other))).toBeNull();
      });

      it('stores a slice of a larger buffer as exactly its own bytes', async () => {
        const whole = seededBytes(4096, 3);
        const slice = whole.subarray(1000, 1500);
        await blobs.put(sha256(slice), slice);
        const back = await blobs.get(sha256(slice));
        expect(back?.byteLength).toBe(500);
        expect(Buffer.from(back!)).toEqual(Buffer.from(slice));
      });

      it('refuses bytes that do not hash to the name (E_HASH) and stores nothing', async () => {
        const bytes = seededBytes(1234, 4);
        const claimed = sha256(seededBytes(1234, 5));
        const error = await blobs.put(claimed, bytes).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(EdgeshipError);
        expect((error as EdgeshipError).code).toBe('E_HASH');
        expect(await blobs.get(claimed)).toBeNull();
        expect(await blobs.size(claimed)).toBeNull();
        expect(await blobs.missing([claimed, sha256(bytes)])).toEqual([claimed, sha256(bytes)]);
      });

      it('refuses a name that is not a lowercase hex SHA-256 (E_MALFORMED)', async () => {
        const bytes = seededBytes(10, 6);
        for (const name of ['../../etc/passwd', sha256(bytes).toUpperCase(), 'abc', '']) {
          for (const call of [() => blobs.put(name, bytes), () => blobs.get(name), () => blobs.size(name)]) {
            const error = await call().catch((e: unknown) => e);
            expect((error as EdgeshipError).code).toBe('E_MALFORMED');
          }
        }
        const error = await blobs.missing([sha256(bytes), 'zz']).catch((e: unknown) => e);
        expect((error as EdgeshipError).code).toBe('E_MALFORMED');
      });

      it('round-trips a 3 MiB blob byte for byte', async () => {
        const big = seededBytes(3 * 1024 * 1024, 8);
        const hash = sha256(big);
        await blobs.put(hash, big);
        expect(await blobs.size(hash)).toBe(big.byteLength);
        const back = await blobs.get(hash);
        expect(back?.byteLength).toBe(big.byteLength);
        expect(sha256(back!)).toBe(hash);
        expect(Buffer.compare(Buffer.from(back!), Buffer.from(big))).toBe(0);
      });

      it('treats storing an existing blob again as a no-op, also concurrently', async () => {
        const bytes = seededBytes(70_000, 9);
        const hash = sha256(bytes);
        await blobs.put(hash, bytes);
        await blobs.put(hash, bytes);
        await Promise.all([blobs.put(hash, bytes), blobs.put(hash, bytes), blobs.put(hash, bytes)]);
        expect(await blobs.size(hash)).toBe(70_000);
        expect(sha256((await blobs.get(hash))!)).toBe(hash);
        const fresh = seededBytes(50_000, 10);
        await Promise.all([blobs.put(sha256(fresh), fresh), blobs.put(sha256(fresh), fresh)]);
        expect(sha256((await blobs.get(sha256(fresh)))!)).toBe(sha256(fresh));
      });
    });

    describe('close', () => {
      it('closes both stores; closing again is harmless and the registry refuses further queries', async () => {
        await registry.insertManifest(manifest('app', 'stable', 1));
        await registry.close();
        await blobs.close();
        await registry.close();
        await blobs.close();
        await expect(registry.latestManifest('app', 'stable')).rejects.toThrow();
      });
    });
  });
}

function manifest(app: string, channel: string, version: number): ManifestRecord {
  const body = JSON.stringify({ app, channel, version });
  return {
    app,
    channel,
    version,
    body,
    etag: `"${sha256(body).slice(0, 40)}"`,
    createdAt: '2025-01-01T00:00:00.000Z',
  };
}

function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

// PostgreSQL test schemas, shared by the storage and multi-process tests.

export const TEST_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestSchema {
  name: string;
  /** TEST_DATABASE_URL with this schema as the only one on the search_path. */
  url: string;
  exists(): Promise<boolean>;
  drop(): Promise<void>;
}

const reachability = new Map<string, Promise<void>>();

/**
 * Fails (never skips) with what is missing when the test database cannot be reached. Checked once
 * per URL, so every test of an unreachable database fails at once with the same message.
 */
export function requirePostgres(url = TEST_DATABASE_URL): Promise<void> {
  let check = reachability.get(url);
  if (!check) {
    check = withClient(url, (client) => client.query('select 1')).then(
      () => {},
      (error: Error) => {
        throw new Error(
          `PostgreSQL is required for this test but ${redact(url)} is not reachable (${error.message}). ` +
            'Start PostgreSQL on 127.0.0.1:5432 (trust auth, database "test") or point DATABASE_URL at one.',
          { cause: error },
        );
      },
    );
    reachability.set(url, check);
  }
  return check;
}

/** Creates an empty schema `es_test_<random>`; storage opened on `url` lives entirely inside it. */
export async function createTestSchema(url = TEST_DATABASE_URL): Promise<TestSchema> {
  await requirePostgres(url);
  const name = `es_test_${randomBytes(8).toString('hex')}`;
  await withClient(url, (client) => client.query(`create schema "${name}"`));
  const separator = url.includes('?') ? '&' : '?';
  return {
    name,
    url: `${url}${separator}options=${encodeURIComponent(`-c search_path=${name}`)}`,
    async exists() {
      const { rows } = await withClient(url, (client) =>
        client.query('select 1 from information_schema.schemata where schema_name = $1', [name]),
      );
      return rows.length === 1;
    },
    async drop() {
      await withClient(url, (client) => client.query(`drop schema if exists "${name}" cascade`));
    },
  };
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}
