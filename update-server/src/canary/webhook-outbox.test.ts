// The outbox on a real SQLite file and a real PostgreSQL, with a real receiver on loopback: an
// event survives a receiver that is down and a leader that stops, and is sent once by two
// overlapping leaders.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type WebhookReceiver, webhookReceiver } from '../../../test/support/webhook-receiver.ts';
import { openStorage } from '../storage/open.ts';
import { createTestSchema, type TestSchema } from '../storage/registry.suite.ts';
import { WebhookOutbox } from './webhook-outbox.ts';

const log = pino({ level: 'silent' });
const FAST = { baseDelayMs: 20, pollMs: 50 };

describe.each(['sqlite', 'postgres'] as const)('the webhook outbox on %s', (dialect) => {
  let dir: string;
  let schema: TestSchema | undefined;
  let storage: Awaited<ReturnType<typeof openStorage>>;
  const receivers: WebhookReceiver<Record<string, unknown>>[] = [];
  const outboxes: WebhookOutbox[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgeship-outbox-'));
    schema = dialect === 'postgres' ? await createTestSchema() : undefined;
    storage = await openStorage({ dataDir: dir, databaseUrl: schema?.url });
  });
  // One receiver per test: the outboxes of a test must not deliver the next test's events.
  afterEach(() => Promise.all(outboxes.splice(0).map((o) => o.pause())));
  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    await storage?.registry.close();
    await storage?.blobs.close();
    await schema?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const receiver = async (status?: (call: number) => number) => {
    const r = await webhookReceiver(undefined, status);
    receivers.push(r);
    return r;
  };
  const outbox = (url: string, opts: ConstructorParameters<typeof WebhookOutbox>[3] = {}) => {
    const o = new WebhookOutbox(storage.db, url, log, { ...FAST, ...opts });
    outboxes.push(o);
    return o;
  };
  const row = (id: string) =>
    storage.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  async function until(what: string, done: () => Promise<boolean>, timeoutMs = 15_000) {
    const end = Date.now() + timeoutMs;
    while (!(await done())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('keeps an event while the receiver is down and delivers it, under one delivery id, once it is back', async () => {
    const hooks = await receiver((call) => (call <= 3 ? 503 : 204));
    const o = outbox(hooks.url);
    const metrics = new Registry();
    o.attachMetrics(metrics);
    o.start();
    const id = (await o.enqueue({ event: 'rollout.halted', reason: 'p95 latency' }))!;
    await until('delivery', async () => (await row(id)).delivered_ms !== null);
    expect(hooks.received.map((e) => e.deliveryId)).toEqual([id, id, id, id]);
    expect(hooks.received[3]).toMatchObject({ event: 'rollout.halted', reason: 'p95 latency' });
    const stored = await row(id);
    expect(Number(stored.attempts)).toBe(4);
    expect(stored.last_error).toBeNull();
    const text = await metrics.metrics();
    expect(text).toContain('edgeship_webhook_deliveries_total{outcome="retried"} 3');
    expect(text).toContain('edgeship_webhook_deliveries_total{outcome="delivered"} 1');
  });

  it('leaves an undelivered event to the next leader, which sends it with the same id', async () => {
    let up = false;
    const hooks = await receiver(() => (up ? 204 : 503));
    const first = outbox(hooks.url, { baseDelayMs: 60_000 });
    first.start();
    const id = (await first.enqueue({ event: 'alert.fired' }))!;
    await until('a failed attempt', async () => Number((await row(id)).attempts) >= 1);
    await first.pause(); // the leader is gone (killed, or lost its lock)
    up = true;
    const next = outbox(hooks.url);
    // Its retry is due in a minute; a new leader honours the schedule, so bring it forward here.
    await storage.db
      .updateTable('webhook_deliveries')
      .set({ next_attempt_ms: Date.now() })
      .where('id', '=', id)
      .execute();
    next.start();
    await until('delivery by the next leader', async () => (await row(id)).delivered_ms !== null);
    expect(hooks.received.map((e) => e.deliveryId)).toEqual([id, id]);
  });

  it('is sent once when two leaders overlap', async () => {
    const hooks = await receiver();
    const [a, b] = [outbox(hooks.url), outbox(hooks.url)];
    a.start();
    b.start();
    const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => a.enqueue({ event: 'x', i })));
    await until('ten deliveries', async () => {
      const rows = await storage.db
        .selectFrom('webhook_deliveries')
        .select('delivered_ms')
        .where('id', 'in', ids as string[])
        .execute();
      return rows.every((r) => r.delivered_ms !== null);
    });
    await Promise.all([a.settled(), b.settled()]);
    expect(hooks.received.map((e) => e.deliveryId).sort()).toEqual([...ids].sort());
  });

  it('gives up after its attempts and says so', async () => {
    const hooks = await receiver(() => 503);
    const o = outbox(hooks.url, { attempts: 3 });
    o.start();
    const id = (await o.enqueue({ event: 'retrain.suggested' }))!;
    await until('giving up', async () => (await row(id)).gave_up_ms !== null);
    const stored = await row(id);
    expect(Number(stored.attempts)).toBe(3);
    expect(stored.last_error).toBe('HTTP 503');
    expect(hooks.received).toHaveLength(3);
  });
});
