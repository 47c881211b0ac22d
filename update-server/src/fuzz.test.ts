import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeRequest,
  type FuzzTarget,
  type FuzzWorld,
  fuzzRequests,
  fuzzTarget,
  type Operation,
  send,
  violation,
} from '../../test/support/fuzz.ts';
import type { TestServer } from '../../test/support/server.ts';

// Seed-fixed, so a failure here reproduces; the 10,000-request run is `npm run bench -- --only fuzz`.
const SEED = 17;

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

// The handlers reach the storage: a string SQLite stores may be one PostgreSQL refuses (NUL).
for (const database of ['SQLite', 'PostgreSQL'] as const)
  describe(`fuzzing every route of the OpenAPI document on ${database}`, () => {
    let target: FuzzTarget | undefined;
    let t: TestServer;
    let world: FuzzWorld;
    let operations: Operation[];
    beforeAll(async () => {
      target = await fuzzTarget(database);
      ({ t, world, operations } = target);
    });
    afterAll(async () => {
      await target?.stop();
    });

    it('covers the admin and the device routes', () => {
      const names = operations.map((o) => `${o.method} ${o.template}`);
      expect(names).toEqual(
        expect.arrayContaining([
          'GET /v1/apps/{app}/channels/{channel}/manifest',
          'GET /v1/keyset',
          'GET /v1/root',
          'GET /v1/chunks/{sha256}',
          'HEAD /v1/chunks/{sha256}',
          'POST /v1/telemetry',
          'PUT /v1/admin/chunks/{sha256}',
          'POST /v1/admin/rollouts/{id}/halt',
          'POST /v1/admin/tokens',
          'GET /v1/admin/fleet',
          'GET /metrics',
        ]),
      );
    });

    it('answers 1,500 random requests through app.request() with no 5xx and only documented errors', async () => {
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(fuzzRequests(operations, world), async (request) => {
          const response = await send(request, { app: t.server.app });
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          const wrong = violation(request, response);
          if (wrong) throw new Error(`${wrong}\n  ${describeRequest(request)}`);
        }),
        { seed: SEED, numRuns: 1500 },
      );
      // The fuzzer reaches the handlers, not only the validators: successes and refusals alike.
      const count = (pred: (s: number) => boolean) =>
        [...statuses].filter(([s]) => pred(s)).reduce((n, [, c]) => n + c, 0);
      expect(count((s) => s >= 200 && s < 300)).toBeGreaterThan(50);
      expect(count((s) => s === 400)).toBeGreaterThan(100);
      expect(count((s) => s === 401 || s === 403)).toBeGreaterThan(20);
      expect(count((s) => s === 404)).toBeGreaterThan(20);
    }, 120_000);

    it('answers 200 random requests over real HTTP on loopback the same way', async () => {
      await fc.assert(
        fc.asyncProperty(fuzzRequests(operations, world), async (request) => {
          const wrong = violation(request, await send(request, { app: t.server.app, baseUrl: t.server.url }));
          if (wrong) throw new Error(`${wrong}\n  ${describeRequest(request)}`);
        }),
        { seed: SEED + 1, numRuns: 200 },
      );
    }, 120_000);

    it('leaves the server healthy, and no promise rejected unhandled', async () => {
      expect((await fetch(`${t.server.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${t.server.url}/readyz`)).status).toBe(200);
      expect((await t.viewer.whoami()).role).toBe('viewer');
      const manifest = await fetch(`${t.server.url}/v1/apps/demo-app/channels/stable/manifest`);
      expect(manifest.status).toBe(200);
      expect(unhandled).toEqual([]);
    });
  });
