import pino from 'pino';
import { Webhook } from 'standardwebhooks';
import { afterAll, expect, it } from 'vitest';
import { type WebhookReceiver, webhookReceiver } from '../../../test/support/webhook-receiver.ts';
import { deliverWebhook, webhookSigner } from './webhook.ts';

const log = pino({ level: 'silent' });
const receivers: Array<WebhookReceiver<Record<string, unknown>>> = [];
afterAll(() => Promise.all(receivers.map((r) => r.close())));

/** A real receiver that answers the first `failures` deliveries with 503, then 200. */
async function receiver(failures: number) {
  const r = await webhookReceiver(undefined, (call) => (call <= failures ? 503 : 200));
  receivers.push(r);
  return { url: r.url, bodies: r.received, deliveries: r.deliveries };
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
