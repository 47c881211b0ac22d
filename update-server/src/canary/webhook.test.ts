import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, expect, it } from 'vitest';
import { deliverWebhook } from './webhook.ts';

const log = pino({ level: 'silent' });
const servers: Array<ReturnType<typeof createServer>> = [];
afterAll(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

/** A real receiver that answers the first `failures` deliveries with 503. */
async function receiver(failures: number) {
  const bodies: Array<Record<string, unknown>> = [];
  let calls = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      calls += 1;
      bodies.push(JSON.parse(body));
      res.writeHead(calls <= failures ? 503 : 200).end();
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, bodies };
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
