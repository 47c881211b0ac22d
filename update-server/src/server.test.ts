import { ManifestEnvelopeSchema, parseJson, seededBytes, verifyManifest } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../test/support/server.ts';
import { AdminApiError } from './admin-client.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

const manifestUrl = (app = 'demo-app', channel = 'stable') =>
  `${t.server.url}/v1/apps/${app}/channels/${channel}/manifest`;

async function fetchManifest(app?: string, channel?: string) {
  const response = await fetch(manifestUrl(app, channel));
  expect(response.status).toBe(200);
  return verifyManifest(await response.text(), {
    root: t.server.trustedRoot,
    app: app ?? 'demo-app',
    channel: channel ?? 'stable',
    now: new Date(),
  });
}

async function expectApiError(promise: Promise<unknown>, status: number, code: string) {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AdminApiError);
  expect({ status: (error as AdminApiError).status, code: (error as AdminApiError).code }).toEqual({
    status,
    code,
  });
}

async function raw(
  method: string,
  path: string,
  init: { token?: string; body?: BodyInit; type?: string } = {},
) {
  const headers: Record<string, string> = {};
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.type) headers['content-type'] = init.type;
  const response = await fetch(`${t.server.url}${path}`, { method, headers, body: init.body });
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: text ? JSON.parse(text) : null };
}

/** A valid body for POST /v1/admin/rollouts but for `fields`. */
const rolloutBody = (fields: Record<string, unknown>) => ({
  app: 'a',
  channel: 'b',
  model: 'demo',
  release: '1.0.0',
  shareBps: 5,
  ...fields,
});

/** A JSON POST as one of the bootstrap tokens' roles; a string body is sent as it is. */
function postJson(path: string, role: 'viewer' | 'operator' | 'publisher' | 'admin', body: unknown) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return raw('POST', path, { token: t.server.tokens![role], type: 'application/json', body: text });
}

/** An upload of `body` as the chunk named aaa…a (publisher). */
function putChunk(body: BodyInit, type = 'application/octet-stream') {
  return raw('PUT', `/v1/admin/chunks/${'a'.repeat(64)}`, { token: t.server.tokens!.publisher, type, body });
}

describe('publishing and rolling out', () => {
  it('uploads only the chunks the server lacks, then registers the signed release', async () => {
    const bytes = seededBytes(600_000, 7);
    const { makeRelease } = await import('../../test/support/server.ts');
    const signed = await makeRelease(t.publisherKey, bytes, { model: 'upload', version: '1.0.0' });
    const first = await t.publisher.uploadRelease(signed, new Map([['model.onnx', bytes]]));
    expect(first.chunksUploaded).toBe(signed.signed.files[0]!.chunks.length);
    expect(first.bytesUploaded).toBe(bytes.length);
    const again = await t.publisher.uploadRelease(signed, new Map([['model.onnx', bytes]]));
    expect(again).toEqual({ chunksUploaded: 0, bytesUploaded: 0 });
    const summary = await t.publisher.registerRelease({
      release: signed,
      metrics: { accuracy: 0.97 },
      lineage: { sourceCommit: 'abc123', datasetHash: 'sha256:00', parameters: { epochs: 3 } },
      modelCard: 'A test model.',
    });
    expect(summary).toMatchObject({
      model: 'upload',
      version: '1.0.0',
      stage: 'staging',
      totalBytes: bytes.length,
    });
    const full = await t.viewer.getRelease('upload', '1.0.0');
    expect(full.lineage.parameters).toEqual({ epochs: 3 });
    expect(full.modelCard).toBe('A test model.');
    await expectApiError(t.publisher.registerRelease({ release: signed }), 409, 'E_CONFLICT');
  });

  it('refuses a release no trusted publisher signed, and one whose chunks were never uploaded', async () => {
    const { generateSigningKey } = await import('@edgeship/protocol');
    const { makeRelease } = await import('../../test/support/server.ts');
    const rogue = await makeRelease(await generateSigningKey(), seededBytes(1000, 3), { model: 'rogue' });
    await expectApiError(t.publisher.registerRelease({ release: rogue }), 422, 'E_PUBLISHER_SIGNATURE');
    const unuploaded = await makeRelease(t.publisherKey, seededBytes(1000, 4), { model: 'ghost' });
    await expectApiError(t.publisher.registerRelease({ release: unuploaded }), 409, 'E_MISSING_CHUNKS');
  });

  it('promotes, stages, halts and rolls back, each change a new verified manifest version', async () => {
    await publish(t, seededBytes(2000, 10), { version: '1.0.0' });
    await publish(t, seededBytes(2000, 11), { version: '1.1.0' });
    await expectApiError(
      fetch(manifestUrl()).then(async (r) => {
        if (!r.ok) throw new AdminApiError(r.status, (await r.json()).error.code, '');
      }),
      404,
      'E_NOT_FOUND',
    );

    await t.operator.promoteRelease('demo-app', 'stable', 'demo', '1.0.0');
    const v1 = await fetchManifest();
    expect(v1.manifest.models[0]).toMatchObject({ name: 'demo', production: '1.0.0', rollout: null });

    const rollout = await t.operator.createRollout({
      app: 'demo-app',
      channel: 'stable',
      model: 'demo',
      release: '1.1.0',
      shareBps: 100,
    });
    expect(rollout).toMatchObject({ control: '1.0.0', mode: 'canary', state: 'active', shareBps: 100 });
    const v2 = await fetchManifest();
    expect(v2.manifest.version).toBe(v1.manifest.version + 1);
    expect(v2.manifest.models[0]!.rollout).toMatchObject({ id: rollout.id, release: '1.1.0', shareBps: 100 });
    expect(v2.manifest.models[0]!.releases.map((r) => r.version).sort()).toEqual(['1.0.0', '1.1.0']);

    await t.operator.setShare(rollout.id, 5000);
    expect((await fetchManifest()).manifest.models[0]!.rollout!.shareBps).toBe(5000);
    await t.operator.halt(rollout.id, 'p95 latency regressed');
    const halted = await fetchManifest();
    expect(halted.manifest.models[0]!.rollout).toBeNull();
    expect(halted.manifest.models[0]!.production).toBe('1.0.0');
    await expectApiError(t.operator.setShare(rollout.id, 10), 409, 'E_INVALID_STATE');

    const second = await t.operator.createRollout({
      app: 'demo-app',
      channel: 'stable',
      model: 'demo',
      release: '1.1.0',
      shareBps: 10_000,
    });
    await t.operator.promote(second.id);
    expect((await fetchManifest()).manifest.models[0]!.production).toBe('1.1.0');
    await t.operator.rollback('demo-app', 'stable', 'demo', 'field reports');
    const back = await fetchManifest();
    expect(back.manifest.models[0]!.production).toBe('1.0.0');
    await expectApiError(t.operator.rollback('demo-app', 'stable', 'demo', 'again'), 409, 'E_INVALID_STATE');

    const { entries } = await t.viewer.audit({ app: 'demo-app', channel: 'stable' });
    expect(entries.map((e) => e.action)).toEqual([
      'release.rollback',
      'rollout.promote',
      'rollout.create',
      'rollout.halt',
      'rollout.share',
      'rollout.create',
      'release.promote',
    ]);
    expect(entries[3]!.details).toMatchObject({ reason: 'p95 latency regressed', fromShareBps: 5000 });
    expect(entries[0]!.actor).toBe('bootstrap-operator');
  });

  it('serves the manifest with a strong ETag and 304 on If-None-Match, and it verifies only unedited', async () => {
    const first = await fetch(manifestUrl());
    const etag = first.headers.get('etag')!;
    // fetch accepts br: the brotli representation's own strong ETag (routes/serving.test.ts).
    expect(etag).toMatch(/^"[0-9a-f]{40}(-br|-gzip)?"$/);
    expect(first.headers.get('cache-control')).toContain('max-age=30');
    const body = await first.text();
    const second = await fetch(manifestUrl(), { headers: { 'if-none-match': etag } });
    expect(second.status).toBe(304);
    const envelope = parseJson(ManifestEnvelopeSchema, body, 'manifest');
    envelope.signed.models[0]!.production = '1.1.0';
    await expect(
      verifyManifest(JSON.stringify(envelope), {
        root: t.server.trustedRoot,
        app: 'demo-app',
        channel: 'stable',
        now: new Date(),
      }),
    ).rejects.toMatchObject({ code: 'E_SIGNATURE' });
  });

  it('serves chunks immutable, with Range support', async () => {
    const bytes = seededBytes(5000, 21);
    const signed = await publish(t, bytes, { model: 'ranged' });
    const hash = signed.signed.files[0]!.chunks[0]!.sha256;
    const full = await fetch(`${t.server.url}/v1/chunks/${hash}`);
    expect(full.headers.get('cache-control')).toContain('immutable');
    expect(full.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(new Uint8Array(await full.arrayBuffer())).toEqual(bytes);
    const part = await fetch(`${t.server.url}/v1/chunks/${hash}`, { headers: { range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${bytes.length}`);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(bytes.subarray(100, 200));
    const tail = await fetch(`${t.server.url}/v1/chunks/${hash}`, { headers: { range: 'bytes=-10' } });
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(bytes.subarray(bytes.length - 10));
    const outside = await fetch(`${t.server.url}/v1/chunks/${hash}`, { headers: { range: 'bytes=9999-' } });
    expect(outside.status).toBe(416);
  });
});

describe('bad input gets the documented 4xx, never a 5xx', () => {
  const cases: Array<
    [string, () => Promise<{ status: number; json: { error: { code: string } } }>, number, string]
  > = [
    ['missing token', () => raw('GET', '/v1/admin/releases'), 401, 'E_UNAUTHENTICATED'],
    [
      'unknown token',
      () => raw('GET', '/v1/admin/releases', { token: 'es_xyz_notarealtokenatall1234' }),
      401,
      'E_UNAUTHENTICATED',
    ],
    ['wrong role', () => postJson('/v1/admin/rollouts', 'viewer', '{}'), 403, 'E_FORBIDDEN'],
    ['bad JSON', () => postJson('/v1/admin/rollouts', 'operator', '{"app":'), 400, 'E_BAD_JSON'],
    [
      'wrong types',
      () => postJson('/v1/admin/rollouts', 'operator', rolloutBody({ shareBps: 'all' })),
      400,
      'E_VALIDATION',
    ],
    [
      'unknown field',
      () => postJson('/v1/admin/rollouts', 'operator', rolloutBody({ admin: true })),
      400,
      'E_VALIDATION',
    ],
    [
      'share out of range',
      () => postJson('/v1/admin/rollouts', 'operator', rolloutBody({ shareBps: 10_001 })),
      400,
      'E_VALIDATION',
    ],
    [
      'unknown release',
      () => postJson('/v1/admin/rollouts', 'operator', rolloutBody({ release: '9.9.9' })),
      404,
      'E_NOT_FOUND',
    ],
    [
      'unknown rollout',
      () =>
        raw('POST', '/v1/admin/rollouts/00000000-0000-4000-8000-000000000000/promote', {
          token: t.server.tokens!.operator,
        }),
      404,
      'E_NOT_FOUND',
    ],
    [
      'malformed rollout id',
      () => raw('POST', '/v1/admin/rollouts/../promote', { token: t.server.tokens!.operator }),
      404,
      'E_NOT_FOUND',
    ],
    [
      'oversize JSON body',
      () => postJson('/v1/admin/releases', 'publisher', { pad: 'x'.repeat(1024 * 1024 + 10) }),
      413,
      'E_TOO_LARGE',
    ],
    ['oversize chunk', () => putChunk(new Uint8Array(16 * 1024 * 1024 + 1)), 413, 'E_TOO_LARGE'],
    ['chunk that does not hash to its name', () => putChunk(new Uint8Array([1, 2, 3])), 422, 'E_HASH'],
    ['chunk sent as JSON', () => putChunk('"x"', 'application/json'), 415, 'E_UNSUPPORTED_MEDIA_TYPE'],
    ['malformed chunk hash', () => raw('GET', '/v1/chunks/not-a-hash'), 400, 'E_VALIDATION'],
    ['unknown chunk', () => raw('GET', `/v1/chunks/${'b'.repeat(64)}`), 404, 'E_NOT_FOUND'],
    ['unknown channel', () => raw('GET', '/v1/apps/nope/channels/stable/manifest'), 404, 'E_NOT_FOUND'],
    ['malformed app name', () => raw('GET', '/v1/apps/NOPE!/channels/stable/manifest'), 400, 'E_VALIDATION'],
    ['unknown route', () => raw('GET', '/v1/nothing-here'), 404, 'E_NOT_FOUND'],
  ];
  for (const [name, send, status, code] of cases) {
    it(`${name} → ${status} ${code}`, async () => {
      const response = await send();
      expect({ status: response.status, code: response.json?.error?.code }).toEqual({ status, code });
      expect(typeof (response.json as unknown as { error: { message: unknown } }).error.message).toBe(
        'string',
      );
    });
  }
});

describe('operations', () => {
  it('answers health, readiness, Prometheus metrics and the OpenAPI document', async () => {
    expect((await raw('GET', '/healthz')).json).toEqual({ ok: true });
    expect((await raw('GET', '/readyz')).json).toEqual({ ok: true });
    const metrics = await (await fetch(`${t.server.url}/metrics`)).text();
    expect(metrics).toMatch(
      /edgeship_http_requests_total\{method="GET",route="\/v1\/apps\/:app\/channels\/:channel\/manifest",status="200"\} \d+/,
    );
    const openapi = (await raw('GET', '/v1/openapi.json')).json;
    expect(openapi.openapi).toBe('3.0.3');
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining([
        '/releases',
        '/rollouts/{id}/halt',
        '/audit',
        '/tokens',
        '/tokens/{id}/revoke',
      ]),
    );
    // The device routes are in the same document, each under its own server.
    const device = (path: string, method: string) => openapi.paths[path][method].servers;
    expect(device('/apps/{app}/channels/{channel}/manifest', 'get')).toEqual([{ url: '/v1' }]);
    expect(device('/keyset', 'get')).toEqual([{ url: '/v1' }]);
    expect(device('/root', 'get')).toEqual([{ url: '/v1' }]);
    expect(device('/chunks/{sha256}', 'get')).toEqual([{ url: '/v1' }]);
    expect(device('/chunks/{sha256}', 'head')).toEqual([{ url: '/v1' }]);
    expect(device('/telemetry', 'post')).toEqual([{ url: '/v1' }]);
    expect(openapi.paths['/chunks/{sha256}'].put.servers).toBeUndefined();
  });

  it('rate-limits a client that sends too much, with Retry-After', async () => {
    const limited = await startTestServer({ rateLimits: { publicPerMinute: 3, adminPerMinute: 3 } });
    try {
      for (let i = 0; i < 3; i++) await limited.viewer.whoami();
      const response = await fetch(`${limited.server.url}/v1/admin/whoami`, {
        headers: { authorization: `Bearer ${limited.server.tokens!.viewer}` },
      });
      expect(response.status).toBe(429);
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await response.json()).error.code).toBe('E_RATE_LIMITED');
    } finally {
      await limited.stop();
    }
  });

  it('loses no release, rollout or audit entry across a restart, and keeps its keys', async () => {
    const first = await startTestServer();
    await publish(first, seededBytes(3000, 30), { version: '2.0.0' });
    await first.operator.promoteRelease('demo-app', 'beta', 'demo', '2.0.0');
    await publish(first, seededBytes(3000, 31), { version: '2.1.0' });
    const rollout = await first.operator.createRollout({
      app: 'demo-app',
      channel: 'beta',
      model: 'demo',
      release: '2.1.0',
      shareBps: 2500,
    });
    const before = {
      releases: await first.viewer.listReleases(),
      rollouts: await first.viewer.listRollouts(),
      audit: await first.viewer.audit(),
      manifest: await (await fetch(`${first.server.url}/v1/apps/demo-app/channels/beta/manifest`)).text(),
    };
    await first.server.close();
    const second = await startTestServer({ dataDir: first.dataDir });
    try {
      expect(second.server.keys.created).toBeUndefined();
      expect(second.server.trustedRoot).toEqual(first.server.trustedRoot);
      expect(await second.viewer.listReleases()).toEqual(before.releases);
      expect(await second.viewer.listRollouts()).toEqual(before.rollouts);
      expect(await second.viewer.audit()).toEqual(before.audit);
      const manifest = await (
        await fetch(`${second.server.url}/v1/apps/demo-app/channels/beta/manifest`)
      ).text();
      expect(manifest).toBe(before.manifest);
      await second.operator.setShare(rollout.id, 5000);
    } finally {
      await second.stop();
    }
  });
});
