import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { deliverWebhook } from '../canary/webhook.ts';

let t: TestServer;
let rolloutId: string;
beforeAll(async () => {
  t = await startTestServer();
  await publish(t, seededBytes(2000, 1), { model: 'kws', version: '1.0.0' });
  await publish(t, seededBytes(2000, 2), { model: 'kws', version: '1.1.0' });
  await t.operator.promoteRelease('demo-app', 'stable', 'kws', '1.0.0');
  rolloutId = (
    await t.operator.createRollout({
      app: 'demo-app',
      channel: 'stable',
      model: 'kws',
      release: '1.1.0',
      shareBps: 10,
    })
  ).id;
});
afterAll(() => t?.stop());

const auth = (role: 'viewer' | 'operator') => ({ authorization: `Bearer ${t.server.tokens![role]}` });

async function answer(path: string, init: RequestInit = {}) {
  const response = await t.server.app.request(path, init);
  const text = await response.text();
  let json: { error?: { code: string; message: string } } | null = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: response.status, code: json?.error?.code, message: json?.error?.message };
}

describe('every numeric query parameter is bounded: 400 with a JSON error, never 500', () => {
  it.each([
    '/v1/admin/fleet?app=demo-app&channel=stable&until=9999999999999',
    '/v1/admin/fleet?app=demo-app&channel=stable&since=9999999999999',
    '/v1/admin/fleet?app=demo-app&channel=stable&until=275760-09-13T00:00:00Z',
    '/v1/admin/fleet?app=demo-app&channel=stable&until=-1',
    '/v1/admin/fleet?app=demo-app&channel=stable&step=0',
    '/v1/admin/fleet?app=demo-app&channel=stable&step=1e400',
    '/v1/admin/fleet?app=demo-app&channel=stable&step=NaN',
    '/v1/admin/audit?before=1e30',
    '/v1/admin/audit?before=-3',
    '/v1/admin/audit?before=1.5',
    '/v1/admin/audit?limit=1e400',
    '/v1/admin/audit?limit=0',
    '/v1/admin/audit?limit=501',
    '/v1/admin/audit?limit=ten',
  ])('%s → 400 E_VALIDATION', async (path) => {
    expect(await answer(path, { headers: auth('viewer') })).toMatchObject({
      status: 400,
      code: 'E_VALIDATION',
    });
  });

  it('still answers in-range values', async () => {
    const until = Math.floor(Date.now() / 1000);
    expect(
      (
        await answer(`/v1/admin/fleet?app=demo-app&channel=stable&until=${until}&step=600`, {
          headers: auth('viewer'),
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await answer(`/v1/admin/audit?before=${Number.MAX_SAFE_INTEGER}&limit=500`, {
          headers: auth('viewer'),
        })
      ).status,
    ).toBe(200);
  });
});

describe('strings are UTF-8, bounded in bytes', () => {
  const halt = (body: BodyInit) =>
    answer(`/v1/admin/rollouts/${rolloutId}/halt`, {
      method: 'POST',
      headers: { ...auth('operator'), 'content-type': 'application/json' },
      body,
    });
  const bytes = (...parts: Array<string | number[]>) =>
    new Uint8Array(parts.flatMap((p) => (typeof p === 'string' ? [...new TextEncoder().encode(p)] : p)));

  it('refuses a body with invalid UTF-8 (400 E_BAD_JSON) instead of storing U+FFFD', async () => {
    for (const bad of [
      bytes('{"reason":"', [0xff], '"}'),
      bytes('{"reason":"', [0xc3, 0x28], '"}'), // a lead byte and no continuation
      bytes('{"reason":"', [0xed, 0xa0, 0x80], '"}'), // a UTF-16 surrogate encoded as UTF-8 (CESU)
      bytes('{"reason":"', [0xc0, 0xaf], '"}'), // overlong "/"
      bytes('{"reason":"x"}', [0xe2, 0x82]), // cut off at the end
    ]) {
      expect(await halt(bad)).toEqual({
        status: 400,
        code: 'E_BAD_JSON',
        message: 'the body is not valid UTF-8',
      });
    }
    expect((await t.viewer.listRollouts({ state: 'halted' })).rollouts).toEqual([]);
  });

  it('refuses invalid UTF-8 on the device routes too, and in a chunked body over real HTTP', async () => {
    const telemetry = await answer('/v1/telemetry', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bytes('{"batchId":"', [0xfe], '"}'),
    });
    expect(telemetry).toMatchObject({ status: 400, code: 'E_BAD_JSON' });
    const chunked = await fetch(`${t.server.url}/v1/admin/rollouts/${rolloutId}/halt`, {
      method: 'POST',
      headers: { ...auth('operator'), 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(bytes('{"reason":"a'));
          controller.enqueue(bytes([0xe2]));
          controller.enqueue(bytes([0x28], '"}'));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(400);
    expect((await chunked.json()).error).toEqual({
      code: 'E_BAD_JSON',
      message: 'the body is not valid UTF-8',
    });
  });

  it('refuses NUL, which PostgreSQL text cannot hold (found by the fuzz: a 500 there)', async () => {
    expect(await halt('{"reason":"a\\u0000b"}')).toMatchObject({ status: 400, code: 'E_VALIDATION' });
    for (const path of [
      '/v1/admin/apps/%00/channels/stable',
      '/v1/admin/apps/demo-app/channels/a%00',
      '/v1/admin/releases?model=%00',
    ]) {
      expect(await answer(path, { headers: auth('viewer') })).toMatchObject({
        status: 400,
        code: 'E_VALIDATION',
      });
    }
  });

  it('refuses a lone surrogate escape, which has no UTF-8 form', async () => {
    expect(await halt('{"reason":"\\ud800 halted"}')).toMatchObject({ status: 400, code: 'E_VALIDATION' });
  });

  it('counts a reason in bytes: 1,000 bytes pass, 1,002 bytes in 501 characters do not', async () => {
    expect(await halt(JSON.stringify({ reason: 'é'.repeat(501) }))).toMatchObject({
      status: 400,
      code: 'E_VALIDATION',
      message: expect.stringContaining('at most 1000 bytes'),
    });
    const ok = await halt(JSON.stringify({ reason: `${'é'.repeat(499)}ab` }));
    expect(ok.status).toBe(200);
    expect((await t.viewer.listRollouts({ state: 'halted' })).rollouts[0]!.reason).toBe(
      `${'é'.repeat(499)}ab`,
    );
  });
});

describe('/metrics', () => {
  it('is open by default (Prometheus with no credentials)', async () => {
    expect((await t.server.app.request('/metrics')).status).toBe(200);
  });

  it('needs a token of any role when metricsAuth is on', async () => {
    const guarded = await startTestServer({ metricsAuth: true });
    try {
      const none = await fetch(`${guarded.server.url}/metrics`);
      expect(none.status).toBe(401);
      expect((await none.json()).error.code).toBe('E_UNAUTHENTICATED');
      const bad = await fetch(`${guarded.server.url}/metrics`, {
        headers: { authorization: 'Bearer es_vie_000000000000000000000000' },
      });
      expect(bad.status).toBe(401);
      const ok = await fetch(`${guarded.server.url}/metrics`, {
        headers: { authorization: `Bearer ${guarded.server.tokens!.viewer}` },
      });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('edgeship_http_requests_total');
    } finally {
      await guarded.stop();
    }
  });
});

describe('secrets stay out of the logs', () => {
  let receiver: Server;
  let receiverUrl: string;
  beforeAll(async () => {
    // A webhook receiver on loopback that refuses every delivery, so the sender logs the URL.
    receiver = createServer((_req, res) => res.writeHead(500).end());
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

  it('logs a webhook URL as its origin only, and never a token', async () => {
    const lines: string[] = [];
    const capture = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    const logged = await startTestServer({ logLevel: 'info', logStream: capture });
    try {
      const secretHook = `${receiverUrl}/services/T0001/B0002/s3cr3tHookPath?token=hook-secret`;
      expect(await deliverWebhook(secretHook, { event: 'test' }, logged.server.log, { attempts: 1 })).toBe(
        false,
      );
      // Tokens sent in requests, good and bad, and a token a caller put in a log field.
      const token = logged.server.tokens!.operator;
      await fetch(`${logged.server.url}/v1/admin/whoami`, { headers: { authorization: `Bearer ${token}` } });
      await fetch(`${logged.server.url}/v1/admin/whoami?token=${token}`, {
        headers: { authorization: 'Bearer es_ope_guessedguessedguessedguessed' },
      });
      logged.server.log.warn({ token, headers: { authorization: `Bearer ${token}` } }, 'careless');
      logged.server.log.info(
        { databaseUrl: 'postgres://edgeship:pg-secret@db.internal:5432/edgeship' },
        'db',
      );

      const text = lines.join('\n');
      const refused = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'webhook failed');
      expect(refused).toMatchObject({ url: receiverUrl, status: 500 });
      const careless = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'careless');
      expect(careless).toMatchObject({ token: '[redacted]', headers: { authorization: '[redacted]' } });
      for (const secret of ['s3cr3tHookPath', 'hook-secret', 'T0001', token, 'guessedguessed', 'pg-secret']) {
        expect(text).not.toContain(secret);
      }
      // The request lines are still there, without the query string.
      expect(lines.some((l) => /"path":"\/v1\/admin\/whoami"/.test(l))).toBe(true);
    } finally {
      await logged.stop();
    }
  });
});
