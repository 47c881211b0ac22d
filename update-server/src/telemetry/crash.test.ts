import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SigningKeyPair, TelemetryBatch } from '@edgeship/protocol';
import { seededBytes } from '@edgeship/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { makeRelease } from '../../../test/support/server.ts';
import { type ServerProcess, spawnServer } from '../../../test/support/server-process.ts';
import { AdminClient } from '../admin-client.ts';
import type { BootstrapTokens } from '../auth/tokens.ts';
import { openStorage } from '../storage/open.ts';
import { createTestSchema, type TestSchema } from '../storage/registry.suite.ts';
import { TelemetryStore } from './store.ts';
import { makeBatch, makeRecord, postBatch, uniformMonitoring } from './testing.ts';

/**
 * A real server process killed with SIGKILL in the middle of ingestion, restarted on the same
 * data: every batch it acknowledged is there, and a client retrying everything counts nothing twice.
 */

const MODEL = 'kws';
const BATCHES = 600;
const DEVICES = 60;
const KILL_AFTER_ACKS = 200;

const temps: string[] = [];
const processes: ServerProcess[] = [];
const schemas: TestSchema[] = [];
afterAll(async () => {
  await Promise.all(processes.map((p) => p.kill()));
  await Promise.all(schemas.map((s) => s.drop()));
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`a server killed during ingestion (${dialect})`, () => {
    it('keeps every acknowledged batch, and a full retry does not double count', async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'edgeship-crash-'));
      temps.push(dataDir);
      const args = ['--data-dir', dataDir, '--port', '0', '--create-keys', '--log-level', 'warn'];
      let databaseUrl: string | undefined;
      if (dialect === 'postgres') {
        const schema = await createTestSchema();
        schemas.push(schema);
        databaseUrl = schema.url;
        args.push('--database-url', databaseUrl);
      }
      const start = async () => {
        const p = await spawnServer(args);
        processes.push(p);
        return p;
      };
      let server = await start();
      const tokens = JSON.parse(await readFile(join(dataDir, 'tokens.json'), 'utf8')) as BootstrapTokens;
      const publisherKey = JSON.parse(
        await readFile(join(dataDir, 'keys', 'publisher.key.json'), 'utf8'),
      ) as SigningKeyPair;
      const bytes = seededBytes(4000, 7);
      const signed = await makeRelease(publisherKey, bytes, {
        model: MODEL,
        version: '1.0.0',
        monitoring: uniformMonitoring(),
      });
      const publisher = new AdminClient(server.url, tokens.publisher);
      await publisher.uploadRelease(signed, new Map([['model.onnx', bytes]]));
      await publisher.registerRelease({ release: signed });

      const batches: TelemetryBatch[] = Array.from({ length: BATCHES }, (_, i) =>
        makeBatch(`device-${String(i % DEVICES).padStart(4, '0')}`, [
          makeRecord({ model: MODEL, version: '1.0.0', latenciesMs: Array(1 + (i % 5)).fill(3 + (i % 11)) }),
        ]),
      );
      const inferencesOf = (list: TelemetryBatch[]) => list.reduce((n, b) => n + b.records[0]!.inferences, 0);

      // Send with 16 connections; SIGKILL once enough are acknowledged, with requests in flight.
      const acknowledged = new Set<string>();
      let next = 0;
      let killed: Promise<void> | null = null;
      const target = server;
      const worker = async () => {
        while (next < batches.length && !killed) {
          const batch = batches[next++]!;
          try {
            const answer = await postBatch(target.url, batch);
            if (answer.status === 202) acknowledged.add(batch.batchId);
          } catch {
            // connection reset by the kill: not acknowledged
          }
          if (acknowledged.size >= KILL_AFTER_ACKS && !killed) killed = target.kill();
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      await killed;
      expect(target.child.signalCode).toBe('SIGKILL');
      expect(acknowledged.size).toBeGreaterThanOrEqual(KILL_AFTER_ACKS);
      expect(next).toBeLessThan(BATCHES); // killed mid-stream, not after the end

      server = await start();
      const stored = async () => {
        const storage = await openStorage({ dataDir, databaseUrl });
        try {
          return await new TelemetryStore(storage.db, storage.dialect).acceptedBatchIds(
            batches.map((b) => b.batchId),
          );
        } finally {
          await storage.registry.close();
          await storage.blobs.close();
        }
      };
      const totalInferences = async () => {
        const response = await fetch(
          `${server.url}/v1/admin/fleet?app=demo-app&channel=stable&model=${MODEL}&since=${Math.floor(Date.now() / 1000) - 3600}`,
          { headers: { authorization: `Bearer ${tokens.viewer}` } },
        );
        const body = (await response.json()) as { versions: Array<{ inferences: number }> };
        return body.versions.reduce((n, v) => n + v.inferences, 0);
      };

      const afterCrash = await stored();
      for (const id of acknowledged) expect(afterCrash.has(id)).toBe(true);
      // The aggregates hold exactly the stored batches: each commit took both or neither.
      expect(await totalInferences()).toBe(inferencesOf(batches.filter((b) => afterCrash.has(b.batchId))));

      // The client retries everything (it cannot know what was committed after its last answer).
      const statuses = { accepted: 0, duplicate: 0 };
      for (let i = 0; i < batches.length; i += 16) {
        const answers = await Promise.all(batches.slice(i, i + 16).map((b) => postBatch(server.url, b)));
        for (const a of answers) {
          expect(a.status).toBe(202);
          statuses[(a.body as { status: 'accepted' | 'duplicate' }).status] += 1;
        }
      }
      expect(statuses.duplicate).toBe(afterCrash.size);
      expect(statuses.accepted).toBe(BATCHES - afterCrash.size);
      expect(await totalInferences()).toBe(inferencesOf(batches));
      expect((await stored()).size).toBe(BATCHES);
      await server.stop();
      expect(server.child.exitCode).toBe(0);
    }, 120_000);
  });
}
