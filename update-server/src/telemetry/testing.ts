import { generateKeyPairSync } from 'node:crypto';
import { Agent, request } from 'node:http';
import {
  type Backend,
  DEVICE_ID_PATTERN,
  generateInstallKey,
  type Histogram,
  type MonitoringSpec,
  recordValue,
  signTelemetryBody,
  TELEMETRY_SIGNATURE_HEADER,
  type TelemetryBatch,
  type TelemetryRecord,
  utf8,
} from '@edgeship/protocol';
import { testBatch, testRecord } from '../../../test/support/telemetry-batch.ts';

/**
 * Builders shared by the telemetry tests and the fleet simulator: a monitoring spec with one
 * feature over [0, 1], valid signed batches and their POST. A real server process to send them
 * to: test/support/server-process.ts; a webhook receiver: test/support/webhook-receiver.ts.
 */

/** Latencies from a fixed-seed generator: log-normal around `medianMs`. */
export function latencies(n: number, medianMs: number, seed: number): number[] {
  let x = seed >>> 0 || 1;
  const uniform = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) + 0.5) / 2 ** 32;
  };
  return Array.from({ length: n }, () => {
    const z = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    return medianMs * Math.exp(0.3 * z);
  });
}

/** Ten equal bins over [0, 1]. */
export const ENERGY_EDGES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/** The reference a publisher profiles from uniform reference data: 10% per bin. */
export function uniformMonitoring(): MonitoringSpec {
  return {
    features: [
      {
        name: 'energy',
        source: { from: 'input', tensor: 'x', reduce: 'rms' },
        binEdges: ENERGY_EDGES,
        reference: ENERGY_EDGES.map(() => 0.1).concat(0.1),
      },
    ],
  };
}

export interface RecordInput {
  model: string;
  version: string;
  backend?: Backend;
  role?: 'active' | 'shadow';
  latenciesMs?: number[];
  /** Inferences beyond the latency samples (a record may carry counts without samples). */
  inferences?: number;
  errors?: TelemetryRecord['errors'];
  energy?: number[];
  shadow?: TelemetryRecord['shadow'];
}

export function makeRecord(input: RecordInput): TelemetryRecord {
  const latencyMs: Histogram = {};
  for (const ms of input.latenciesMs ?? []) recordValue(latencyMs, ms);
  return testRecord({
    model: input.model,
    version: input.version,
    backend: input.backend ?? 'wasm',
    role: input.role ?? 'active',
    inferences: input.inferences ?? input.latenciesMs?.length ?? 0,
    errors: input.errors ?? {},
    latencyMs,
    features: input.energy ? [{ name: 'energy', counts: input.energy }] : [],
    ...(input.shadow ? { shadow: input.shadow } : {}),
  });
}

/** A shadow run as a device reports it: `production` serving, `candidate` run beside it. */
export interface ShadowRun {
  model: string;
  production: string;
  candidate: string;
  /** Calls compared, each also one inference of both releases. */
  compared: number;
  agreements: number;
  /** Every call's |difference| between the two outputs, in thousandths. */
  absDiffMilli: number;
  productionMs: number;
  candidateMs: number;
}

/** The two records of a shadow run: the production release's and the candidate's (role shadow). */
export function shadowRecords(run: ShadowRun): TelemetryRecord[] {
  const absDiff: Histogram = {};
  for (let i = 0; i < run.compared; i++) recordValue(absDiff, run.absDiffMilli);
  const calls = (ms: number) => Array<number>(run.compared).fill(ms);
  return [
    makeRecord({ model: run.model, version: run.production, latenciesMs: calls(run.productionMs) }),
    makeRecord({
      model: run.model,
      version: run.candidate,
      role: 'shadow',
      latenciesMs: calls(run.candidateMs),
      shadow: { against: run.production, compared: run.compared, agreements: run.agreements, absDiff },
    }),
  ];
}

/**
 * A batch from `device` (an install's id, or a name for one, see installFor) over the `windowMs`
 * (default a minute) that ends now; `fields` replace any other field. The tests', the benchmarks'
 * and the fleet simulator's batches are all built here, on test/support/telemetry-batch.ts.
 */
export function makeBatch(
  device: string,
  records: TelemetryRecord[],
  { windowMs = 60_000, ...fields }: Partial<TelemetryBatch> & { windowMs?: number } = {},
): TelemetryBatch {
  const now = Date.now();
  return testBatch(records, {
    deviceId: installFor(device),
    windowStart: new Date(now - windowMs).toISOString(),
    windowEnd: new Date(now).toISOString(),
    ...fields,
  });
}

/** Private keys (PKCS#8) of the installs the tests made, by device id: postBatch signs with them. */
const installKeys = new Map<string, { pkcs8: Uint8Array; key?: CryptoKey }>();
const labels = new Map<string, string>();

/** A new install: its device id is its Ed25519 public key, and postBatch signs its batches. */
export function newInstall(): string {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const deviceId = publicKey.export({ format: 'jwk' }).x!; // JWK `x` is the raw key, base64url
  installKeys.set(deviceId, { pkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }) });
  return deviceId;
}

export function newInstalls(n: number): string[] {
  return Array.from({ length: n }, () => newInstall());
}

/** The install a test calls by a name ('device-0001'): made on first use, the same afterwards. */
export function installFor(label: string): string {
  if (DEVICE_ID_PATTERN.test(label)) return label;
  let id = labels.get(label);
  if (!id) {
    id = newInstall();
    labels.set(label, id);
  }
  return id;
}

/** The WebCrypto private key of an install made here (what the runtime holds in IndexedDB). */
export async function installPrivateKey(deviceId: string): Promise<CryptoKey | undefined> {
  const entry = installKeys.get(deviceId);
  if (!entry) return undefined;
  entry.key ??= await crypto.subtle.importKey('pkcs8', new Uint8Array(entry.pkcs8), 'Ed25519', false, [
    'sign',
  ]);
  return entry.key;
}

const agents = new Map<string, Agent>();

/** A keep-alive agent whose connections leave from `address` (any of 127.0.0.0/8 works on Linux). */
export function agentFrom(address: string): Agent {
  let agent = agents.get(address);
  if (!agent) {
    agent = new Agent({ keepAlive: true, localAddress: address });
    agents.set(address, agent);
  }
  return agent;
}

export interface PostOptions {
  /** Source address of the connection: the server counts networks by it (a /24 per 127.x.y). */
  from?: string;
  /** Send without the signature header (what an attacker without the key can do). */
  unsigned?: boolean;
  /** Extra headers (a forged signature, say). */
  headers?: Record<string, string>;
  /** The install key that signs it (default: the key of an install made here, if any). */
  key?: CryptoKey;
}

/** POSTs a batch the way runtime/src/telemetry/sender.ts does: signed by its install's key. */
export async function postBatch(
  server: string,
  batch: TelemetryBatch,
  opts: PostOptions = {},
): Promise<{ status: number; body: unknown }> {
  const bytes = new TextEncoder().encode(JSON.stringify(batch));
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'idempotency-key': batch.batchId,
    ...opts.headers,
  };
  const key = opts.key ?? (await installPrivateKey(batch.deviceId));
  if (key && !opts.unsigned && !(TELEMETRY_SIGNATURE_HEADER in headers)) {
    headers[TELEMETRY_SIGNATURE_HEADER] = await signTelemetryBody(key, bytes);
  }
  const { status, text } = await postBytes(`${server}/v1/telemetry`, bytes, headers, opts.from);
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status, body };
}

/**
 * One HTTP POST over node:http (fetch cannot pick its source address). A kept-alive connection
 * the server closed as idle just as the request went out fails with ECONNRESET: that request is
 * sent once more on a new connection, as Node's documentation advises (`req.reusedSocket`);
 * a telemetry POST may be, since the server answers a repeated batch as a duplicate.
 */
export async function postBytes(
  url: string,
  bytes: Uint8Array,
  headers: Record<string, string>,
  from = '127.0.0.1',
): Promise<{ status: number; text: string }> {
  try {
    return await postOnce(url, bytes, headers, from);
  } catch (error) {
    if ((error as { reusedSocket?: boolean }).reusedSocket !== true) throw error;
    return postOnce(url, bytes, headers, from);
  }
}

function postOnce(
  url: string,
  bytes: Uint8Array,
  headers: Record<string, string>,
  from: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent: agentFrom(from),
        headers: { ...headers, 'content-length': String(bytes.byteLength) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'ECONNRESET' && req.reusedSocket
          ? Object.assign(error, { reusedSocket: true })
          : error,
      );
    });
    req.end(bytes);
  });
}

/** A signature check's cases: good, missing, another install's, other bytes, and malformed keys and signatures. */
export async function signatureCases() {
  const [a, b] = [await generateInstallKey(), await generateInstallKey()];
  const body = utf8('{"batch":1}');
  const sig = await signTelemetryBody(a.privateKey, body);
  const cases: Array<[string, Uint8Array, string | undefined]> = [
    [a.deviceId, body, sig],
    [a.deviceId, body, undefined],
    [b.deviceId, body, sig],
    [a.deviceId, utf8('{"batch":2}'), sig],
    ['not-a-key', body, sig],
    [a.deviceId, body, 'A'.repeat(86)],
    // One character of the signature changed: always another signature (an 'AA' tail was the
    // same one whenever the last byte was already 0, one run in 256).
    [a.deviceId, body, `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`],
    // 32 bytes that are no point on the curve
    [`${'_'.repeat(42)}8`, body, sig],
  ];
  return { good: { deviceId: a.deviceId, body, sig }, cases };
}
