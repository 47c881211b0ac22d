import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { Webhook } from 'standardwebhooks';
import { afterAll, expect, it } from 'vitest';
import { deliverWebhook, webhookSigner } from './webhook.ts';

const log = pino({ level: 'silent' });
const servers: Array<ReturnType<typeof createServer>> = [];
afterAll(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

/** A real receiver that answers the first `failures` deliveries with 503. */
async function receiver(failures: number) {
  const bodies: Array<Record<string, unknown>> = [];
  const deliveries: Array<{ body: string; headers: Record<string, string> }> = [];
  let calls = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      calls += 1;
      bodies.push(JSON.parse(body));
      deliveries.push({ body, headers: req.headers as Record<string, string> });
      res.writeHead(calls <= failures ? 503 : 200).end();
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, bodies, deliveries };
}

it('retries a refused webhook with the same delivery id until it is accepted', async () => {
  const { url, bodies } = await receiver(2);
  expect(await deliverWebhook(url, { event: 'rollout.halted', reason: 'r' }, log, { baseDelayMs: 5 })).toBe(
    true,
  );
  expect(bodies).toHaveLength(3);
  expect(new Set(bodies.map((b) => b.deliveryId)).size).toBe(1);
  expect(bodies[2]).toMatchObject({ event: 'rollout.halted', reason: 'r' });
});

it('gives up after its attempts, without throwing', async () => {
  const { url, bodies } = await receiver(100);
  expect(await deliverWebhook(url, { event: 'rollout.halted' }, log, { attempts: 3, baseDelayMs: 5 })).toBe(
    false,
  );
  expect(bodies).toHaveLength(3);
});

it('treats an unreachable receiver as a failed attempt', async () => {
  expect(
    await deliverWebhook('http://127.0.0.1:9/', { event: 'x' }, log, { attempts: 2, baseDelayMs: 5 }),
  ).toBe(false);
});

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

it('signs each attempt by the Standard Webhooks scheme when a secret is set, so a receiver can check it', async () => {
  const { url, deliveries } = await receiver(1);
  expect(
    await deliverWebhook(url, { event: 'rollout.halted' }, log, { baseDelayMs: 5, secret: SECRET }),
  ).toBe(true);
  expect(deliveries).toHaveLength(2);
  const receiverSide = new Webhook(SECRET);
  for (const d of deliveries) {
    expect(receiverSide.verify(d.body, d.headers)).toMatchObject({ event: 'rollout.halted' });
    expect(d.headers['webhook-id']).toBe(JSON.parse(d.body).deliveryId);
  }
  // A body changed on the way, or a receiver holding another secret, refuses it.
  const tampered = deliveries[0]!.body.replace('rollout.halted', 'rollout.promoted');
  expect(() => receiverSide.verify(tampered, deliveries[0]!.headers)).toThrow();
  expect(() =>
    new Webhook(`whsec_${Buffer.alloc(32, 8).toString('base64')}`).verify(
      deliveries[0]!.body,
      deliveries[0]!.headers,
    ),
  ).toThrow();
});

it('sends no signature headers without a secret, and refuses a secret too short to be one', async () => {
  const { url, deliveries } = await receiver(0);
  await deliverWebhook(url, { event: 'x' }, log, { baseDelayMs: 5 });
  expect(deliveries[0]!.headers['webhook-signature']).toBeUndefined();
  expect(() => webhookSigner(`whsec_${Buffer.alloc(8).toString('base64')}`)).toThrow(/at least 24 bytes/);
});
