import { randomBytes } from 'node:crypto';
import { seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { makeBatch, makeRecord, newInstall, postBatch, uniformMonitoring } from '../telemetry/testing.ts';

/** Real Redis on loopback, as in http/shared-limits.test.ts: two servers stand for two processes. */
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const servers: TestServer[] = [];

beforeAll(async () => {
  const keyPrefix = `edgeship-test-${randomBytes(6).toString('hex')}`;
  for (let i = 0; i < 2; i++) {
    const t = await startTestServer({
      rateLimitStore: { kind: 'redis', redisUrl: REDIS_URL, keyPrefix },
      telemetry: { perDevicePerMinute: 3 },
    });
    servers.push(t);
    await publish(t, seededBytes(5000, 1), {
      model: 'kws',
      version: '1.0.0',
      monitoring: uniformMonitoring(),
    });
  }
});
afterAll(async () => {
  for (const t of servers) await t.stop();
});

const batch = (device: string) =>
  makeBatch(device, [makeRecord({ model: 'kws', version: '1.0.0', latenciesMs: [12, 20] })]);

it('gives a device its telemetry budget once across processes on a shared store', async () => {
  const [a, b] = servers.map((t) => t.server.url) as [string, string];
  const device = newInstall();
  const statuses = [];
  for (const url of [a, b, a, b, a]) statuses.push((await postBatch(url, batch(device))).status);
  // Three per minute in all, not three per process: the fourth is refused by whichever it reaches.
  expect(statuses).toEqual([202, 202, 202, 429, 429]);
  // Another device has its own budget.
  expect((await postBatch(b, batch(newInstall()))).status).toBe(202);
});

it('gives a device its telemetry budget in one process without a shared store', async () => {
  const t = await startTestServer({ telemetry: { perDevicePerMinute: 2 } });
  try {
    await publish(t, seededBytes(5000, 1), {
      model: 'kws',
      version: '1.0.0',
      monitoring: uniformMonitoring(),
    });
    const device = newInstall();
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await postBatch(t.server.url, batch(device)));
    expect(answers.map((a) => a.status)).toEqual([202, 202, 429, 429]);
    expect(answers[2]!.body).toMatchObject({ error: { code: 'E_RATE_LIMITED' } });
    expect((await postBatch(t.server.url, batch(newInstall()))).status).toBe(202);
  } finally {
    await t.stop();
  }
});
