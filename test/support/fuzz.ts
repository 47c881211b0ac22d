import { seededBytes } from '@edgeship/protocol';
import fc from 'fast-check';
import { makeBatch, makeRecord } from '../../update-server/src/telemetry/testing.ts';
import { publish, startTestServer, type TestServer } from './server.ts';

/**
 * A property-based fuzzer over every operation of the update server's OpenAPI document: random
 * methods, headers, path, query values and bodies, some near-valid (a real app, a real chunk hash,
 * a real token), most not. Shared by the seed-fixed node test (update-server/src/fuzz.test.ts) and
 * the 10,000-request bench (bench/src/fuzz.ts). The property: no answer is 5xx, and every error
 * is the documented `{ error: { code, message } }`.
 */

export interface FuzzRequest {
  method: string;
  /** Path and query string, percent-encoded. */
  path: string;
  headers: Record<string, string>;
  body?: Uint8Array<ArrayBuffer>;
  /** The OpenAPI operation it was drawn from (`METHOD /path`), for the report. */
  operation: string;
}

export interface FuzzResponse {
  status: number;
  contentType: string | null;
  text: string;
}

export interface Operation {
  method: string;
  /** The full path template under the server root, e.g. `/v1/admin/rollouts/{id}/halt`. */
  template: string;
  pathParams: string[];
  queryParams: Array<{ name: string; required: boolean }>;
  hasBody: boolean;
}

interface OpenApiDocument {
  servers?: Array<{ url: string }>;
  paths: Record<
    string,
    Record<
      string,
      {
        servers?: Array<{ url: string }>;
        parameters?: Array<{ in: string; name: string; required?: boolean }>;
        requestBody?: unknown;
      }
    >
  >;
}

/** Every operation of the document, with the server each one is under. */
export function operationsOf(doc: OpenApiDocument): Operation[] {
  const join = (base: string, path: string) => `${base.replace(/\/$/, '')}${path}`;
  const operations: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const base = op.servers?.[0]?.url ?? doc.servers?.[0]?.url ?? '';
      const params = op.parameters ?? [];
      operations.push({
        method: method.toUpperCase(),
        template: join(base, path),
        pathParams: [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!),
        queryParams: params
          .filter((p) => p.in === 'query')
          .map((p) => ({ name: p.name, required: p.required === true })),
        hasBody: op.requestBody !== undefined,
      });
    }
  }
  return operations;
}

/** Real names, hashes, ids and tokens from the server under test, so requests reach the handlers. */
export interface FuzzWorld {
  /** One per role, never revoked by the fuzzer. */
  tokens: string[];
  /** Tokens whose ids are in `tokenIds`: the fuzzer may revoke them. */
  throwawayTokens: string[];
  apps: string[];
  channels: string[];
  models: string[];
  versions: string[];
  rolloutIds: string[];
  tokenIds: string[];
  chunkHashes: string[];
  etags: string[];
  signedRelease: unknown;
}

/** Publishes two releases, a rollout and a few throwaway tokens: the fuzzer's world. */
export async function prepareWorld(t: TestServer): Promise<FuzzWorld> {
  const first = await publish(t, seededBytes(3000, 101), { model: 'kws', version: '1.0.0' });
  await publish(t, seededBytes(3000, 102), { model: 'kws', version: '1.1.0' });
  await t.operator.promoteRelease('demo-app', 'stable', 'kws', '1.0.0');
  const rollout = await t.operator.createRollout({
    app: 'demo-app',
    channel: 'stable',
    model: 'kws',
    release: '1.1.0',
    shareBps: 1000,
  });
  const throwaway = await Promise.all(
    ['fuzz-a', 'fuzz-b', 'fuzz-c'].map((name) => t.admin.createToken({ name, role: 'viewer' })),
  );
  const manifest = await fetch(`${t.server.url}/v1/apps/demo-app/channels/stable/manifest`);
  await manifest.arrayBuffer();
  const tokens = t.server.tokens!;
  return {
    // The fuzzer's own tokens are never revocable by it: only throwaway ids are in the pool.
    tokens: [tokens.admin, tokens.publisher, tokens.operator, tokens.viewer],
    throwawayTokens: throwaway.map((x) => x.token),
    apps: ['demo-app', 'other-app'],
    channels: ['stable', 'beta'],
    models: ['kws', 'vad'],
    versions: ['1.0.0', '1.1.0', '9.9.9'],
    rolloutIds: [rollout.id],
    tokenIds: throwaway.map((x) => x.id),
    chunkHashes: first.signed.files.flatMap((f) => f.chunks.map((c) => c.sha256)),
    etags: [manifest.headers.get('etag') ?? '"x"'],
    signedRelease: first,
  };
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const visibleAscii = (maxLength: number) =>
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength });
const anyText = fc.string({ unit: 'binary', maxLength: 40 });

const numberish = fc.oneof(
  fc.integer().map(String),
  fc.double().map(String),
  fc.constantFrom(
    '0',
    '-1',
    '1e400',
    '-1e400',
    'NaN',
    'Infinity',
    '0x10',
    '1.5',
    '9999999999999',
    '99999999999999999999',
    '9007199254740993',
    '',
    ' 1',
    '1,2',
  ),
  fc.integer({ min: 1, max: 400 }).map((n) => '9'.repeat(n)),
);
// Times as the fleet view takes them: epoch seconds or ISO-8601, in and far out of range.
const timeish = fc.oneof(
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  fc.integer({ min: 0, max: 4_200_000_000 }).map(String),
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }).map(String),
  fc.constantFrom('9999999999999', '8640000000001', '275760-09-13T00:00:00Z', '2026-02-30', '-1', 'now'),
);

function pathValue(name: string, w: FuzzWorld): fc.Arbitrary<string> {
  const known: Record<string, string[]> = {
    app: w.apps,
    channel: w.channels,
    model: w.models,
    version: w.versions,
    id: [...w.rolloutIds, ...w.tokenIds, '00000000-0000-4000-8000-000000000000'],
    sha256: [...w.chunkHashes, 'a'.repeat(64)],
  };
  const good = fc.constantFrom(...(known[name] ?? ['x']));
  const encoded = fc
    .oneof(anyText, numberish, fc.constantFrom('..', '.', '%', 'A'.repeat(300), '\u0000', 'kws\u0000'))
    .map(encodeURIComponent);
  // Percent-encoding a decoder must survive: truncated, invalid, an encoded slash or NUL.
  const raw = fc.constantFrom('%', '%zz', '%E0%A4%A', '%2F', '%00', '%C0%AF', '%FF');
  return fc.oneof(
    { weight: 6, arbitrary: good },
    { weight: 3, arbitrary: encoded },
    { weight: 1, arbitrary: raw },
  );
}

function queryValue(name: string, w: FuzzWorld): fc.Arbitrary<string> {
  const known: Record<string, fc.Arbitrary<string>> = {
    app: fc.constantFrom(...w.apps),
    channel: fc.constantFrom(...w.channels),
    model: fc.constantFrom(...w.models),
    state: fc.constantFrom('active', 'halted', 'promoted', 'nope'),
    since: timeish,
    until: timeish,
    step: fc.oneof(fc.integer({ min: 1, max: 100_000 }).map(String), numberish),
    limit: fc.oneof(fc.integer({ min: 1, max: 500 }).map(String), numberish),
    before: fc.oneof(fc.integer({ min: 1, max: 1_000_000 }).map(String), numberish),
  };
  // Mostly plausible values, so a request gets past one check to the next.
  return fc.oneof(
    { weight: 6, arbitrary: known[name] ?? numberish },
    { weight: 1, arbitrary: numberish },
    { weight: 1, arbitrary: fc.oneof(anyText, fc.constantFrom('\u0000', 'demo-app\u0000')) },
  );
}

function queryString(op: Operation, w: FuzzWorld): fc.Arbitrary<string> {
  // Each documented parameter: once, now and then repeated, absent half the time if optional.
  const documented = op.queryParams.map(({ name, required }) =>
    fc
      .tuple(fc.noBias(fc.nat(19)), queryValue(name, w), queryValue(name, w))
      .map(([dice, a, b]) => (dice < (required ? 1 : 10) ? [] : dice === 19 ? [a, b] : [a]))
      .map((values) => values.map((v) => `${name}=${encodeURIComponent(v)}`)),
  );
  const extra = fc
    .tuple(fc.noBias(fc.nat(9)), anyText, anyText)
    .map(([dice, k, v]) => (dice === 0 ? [`${encodeURIComponent(k)}=${encodeURIComponent(v)}`] : []));
  return fc
    .tuple(fc.tuple(...documented), extra)
    .map(([parts, more]) => [...parts.flat(), ...more])
    .map((parts) => (parts.length ? `?${parts.join('&')}` : ''));
}

function headers(w: FuzzWorld): fc.Arbitrary<Record<string, string>> {
  const authorization = fc.oneof(
    { weight: 16, arbitrary: fc.constantFrom(...w.tokens).map((t) => `Bearer ${t}`) },
    { weight: 1, arbitrary: fc.constantFrom(...w.throwawayTokens).map((t) => `Bearer ${t}`) },
    { weight: 1, arbitrary: visibleAscii(300).map((t) => `Bearer ${t}`) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        'Bearer',
        'Basic dXNlcjpwYXNz',
        'Bearer es_adm_',
        `Bearer ${'A'.repeat(257)}`,
      ),
    },
  );
  // JSON most of the time, so bodies get past the media-type check to the schema and beyond.
  const contentType = fc.oneof(
    { weight: 8, arbitrary: fc.constant('application/json') },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        'application/json; charset=utf-8',
        'application/json; charset=latin1',
        'application/octet-stream',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/merge-patch+json',
        '',
      ),
    },
  );
  const range = fc.oneof(
    fc.constantFrom(
      'bytes=0-',
      'bytes=-0',
      'bytes=-1',
      'bytes=5-2',
      'bytes=0-1,2-3',
      'bytes=99999999999999999999-',
      'items=0-1',
    ),
    fc.tuple(numberish, numberish).map(([a, b]) => `bytes=${a}-${b}`),
    visibleAscii(30),
  );
  const ifNoneMatch = fc.oneof(fc.constantFrom(...w.etags, '*', 'W/"x"', '"a", "b"'), visibleAscii(60));
  const forwarded = fc.oneof(fc.ipV4(), fc.ipV6(), visibleAscii(40), fc.constant('1.2.3.4, 5.6.7.8'));
  // A token on most requests (else most would stop at 401); the other headers half the time.
  return fc
    .record({
      authorization: fc.option(authorization, { freq: 12 }),
      'content-type': fc.option(contentType, { freq: 6 }),
      range: fc.option(range),
      'if-none-match': fc.option(ifNoneMatch),
      'idempotency-key': fc.option(fc.oneof(fc.uuid(), visibleAscii(80))),
      'x-forwarded-for': fc.option(forwarded),
      accept: fc.option(fc.constantFrom('*/*', 'application/json', 'text/html')),
      origin: fc.option(fc.constantFrom('https://app.example', 'null')),
    })
    .map(
      (all) =>
        Object.fromEntries(Object.entries(all).filter(([, v]) => v !== null)) as Record<string, string>,
    );
}

/** Near-valid JSON for the routes that take one, so mutations land deep in the handlers. */
function validBodies(template: string, w: FuzzWorld): unknown[] {
  const [app, channel, model] = [w.apps[0], w.channels[0], w.models[0]];
  const byRoute: Array<[RegExp, unknown[]]> = [
    [
      /\/rollouts$/,
      [
        { app, channel, model, release: '1.1.0', shareBps: 500 },
        { app, channel, model, release: '1.1.0', shareBps: 500, mode: 'shadow', control: '1.0.0' },
      ],
    ],
    [/\/share$/, [{ shareBps: 2500 }]],
    [/\/(halt|rollback)$/, [{ reason: 'fuzz' }]],
    [/\/models\/\{model\}\/promote$/, [{ release: '1.0.0' }, { release: '1.1.0' }]],
    [/\/tokens$/, [{ name: 'fuzz-person', role: 'viewer', expiresInDays: 1 }]],
    [/\/chunks\/missing$/, [{ hashes: w.chunkHashes }]],
    [/\/releases$/, [{ release: w.signedRelease, metrics: { accuracy: 0.9 }, modelCard: 'card' }]],
    [
      /\/telemetry$/,
      [makeBatch('fuzz-device-1', [makeRecord({ model: 'kws', version: '1.0.0', latenciesMs: [3, 4, 5] })])],
    ],
  ];
  return byRoute.find(([pattern]) => pattern.test(template))?.[1] ?? [{ reason: 'fuzz' }, { shareBps: 1 }];
}

function body(template: string, w: FuzzWorld): fc.Arbitrary<Uint8Array<ArrayBuffer> | undefined> {
  const encode = (s: string) => new TextEncoder().encode(s) as Uint8Array<ArrayBuffer>;
  const bodies = validBodies(template, w);
  const valid = fc.constantFrom(...bodies);
  // One field of the route's own replaced (or a new one added) with anything JSON can say.
  const keys = [...new Set(bodies.flatMap((b) => Object.keys(b as object)))];
  const mutated = fc
    .tuple(
      valid,
      fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...keys) }, { weight: 1, arbitrary: anyText }),
      fc.jsonValue({ maxDepth: 3 }),
    )
    .map(([v, key, value]) => ({ ...(v as object), [key]: value }));
  const json = fc
    .oneof(
      { weight: 2, arbitrary: valid },
      { weight: 3, arbitrary: mutated },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
    )
    .map((v) => encode(JSON.stringify(v)));
  const invalidUtf8 = fc
    .tuple(json, fc.constantFrom([0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xe2, 0x82]), fc.nat())
    .map(([bytes, bad, at]) => {
      const cut = bytes.length ? at % bytes.length : 0;
      return new Uint8Array([
        ...bytes.subarray(0, cut),
        ...bad,
        ...bytes.subarray(cut),
      ]) as Uint8Array<ArrayBuffer>;
    });
  const oddText = fc
    .constantFrom(
      '{"reason":"\\ud800"}',
      '{"reason":"a\\u0000b"}',
      '{"name":"a\\u0000","role":"viewer"}',
      '{"app":',
      '[]',
      'null',
      '"x"',
      '{"__proto__":{"admin":true}}',
      '{"constructor":{"prototype":{}}}',
      `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
      `{"reason":"${'é'.repeat(600)}"}`,
    )
    .map(encode);
  const bytes = fc.uint8Array({ maxLength: 2048 }).map((b) => b as Uint8Array<ArrayBuffer>);
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 5, arbitrary: json },
    { weight: 1, arbitrary: invalidUtf8 },
    { weight: 1, arbitrary: oddText },
    { weight: 1, arbitrary: bytes },
  );
}

/** One random request against one operation of the document (or an unknown path, now and then). */
export interface FuzzTarget {
  t: TestServer;
  world: FuzzWorld;
  operations: Operation[];
  /** Stops the server and drops its PostgreSQL schema. */
  stop(): Promise<void>;
}

/**
 * A test server to fuzz on `database`, with limits high enough that the handlers, not the
 * limiters, answer (the limiters have their own tests), its world and the operations it documents.
 */
export async function fuzzTarget(database: 'SQLite' | 'PostgreSQL'): Promise<FuzzTarget> {
  const t = await startTestServer({
    postgres: database === 'PostgreSQL',
    rateLimits: { publicPerMinute: 1e9, adminPerMinute: 1e9, authFailuresPerMinute: 1e9 },
  });
  const stop = () => t.stop();
  try {
    const world = await prepareWorld(t);
    const doc = await (await fetch(`${t.server.url}/v1/openapi.json`)).json();
    return { t, world, operations: operationsOf(doc as OpenApiDocument), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export function fuzzRequests(operations: Operation[], w: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  const perOperation = operations.map((op) => ({
    // Operations with more parameters have more ways to go wrong: they get more of the requests.
    weight: 1 + op.pathParams.length + op.queryParams.length,
    arbitrary: fc
      .record({
        method: fc.oneof(
          { weight: 4, arbitrary: fc.constant(op.method) },
          { weight: 1, arbitrary: fc.constantFrom(...METHODS) },
        ),
        params: fc.tuple(...op.pathParams.map((name) => pathValue(name, w))),
        query: queryString(op, w),
        headers: headers(w),
        body: body(op.template, w),
      })
      .map(({ method, params, query, headers, body }): FuzzRequest => {
        let i = 0;
        const path = op.template.replace(/\{\w+\}/g, () => params[i++] ?? '');
        const withBody = method !== 'GET' && method !== 'HEAD' && body !== undefined;
        return {
          method,
          path: `${path}${query}`,
          headers,
          ...(withBody ? { body } : {}),
          operation: `${op.method} ${op.template}`,
        };
      }),
  }));
  const unknown = fc.tuple(fc.constantFrom(...METHODS), fc.webPath(), headers(w)).map(
    ([method, path, headers]): FuzzRequest => ({
      method,
      path: path || '/',
      headers,
      operation: 'unknown path',
    }),
  );
  // No bias: fast-check's size bias favours the first alternative of each oneof and small values,
  // which would skew the weights above; the edge values are listed explicitly instead.
  return fc.noBias(
    fc.oneof({ weight: 20, arbitrary: fc.oneof(...perOperation) }, { weight: 1, arbitrary: unknown }),
  );
}

/** What the property requires of an answer; null when it holds. */
export function violation(request: FuzzRequest, response: FuzzResponse): string | null {
  if (response.status >= 500) return `status ${response.status}`;
  if (response.status < 400 || request.method === 'HEAD') return null;
  try {
    const error = (JSON.parse(response.text) as { error?: { code?: unknown; message?: unknown } }).error;
    if (
      typeof error?.code === 'string' &&
      /^E_[A-Z_]+$/.test(error.code) &&
      typeof error.message === 'string'
    ) {
      return null;
    }
  } catch {}
  return `status ${response.status} without a JSON error: ${response.text.slice(0, 200)}`;
}

/** Sends through `app.request()` (no socket), or over HTTP when `baseUrl` is given. */
export async function send(
  request: FuzzRequest,
  target: {
    app: { request(path: string, init: RequestInit): Response | Promise<Response> };
    baseUrl?: string;
  },
): Promise<FuzzResponse> {
  const init: RequestInit = { method: request.method, headers: request.headers };
  if (request.body) init.body = request.body;
  const response = target.baseUrl
    ? await fetch(`${target.baseUrl}${request.path}`, init)
    : await target.app.request(request.path, init);
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    text: await response.text(),
  };
}

export function describeRequest(r: FuzzRequest): string {
  const body = r.body
    ? ` body(${r.body.length} bytes): ${new TextDecoder().decode(r.body.subarray(0, 160))}`
    : '';
  return `${r.method} ${r.path.slice(0, 200)} [${r.operation}] headers ${JSON.stringify(r.headers).slice(0, 300)}${body}`;
}
