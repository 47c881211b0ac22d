import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { DEVICE_ID_PATTERN, telemetrySignedBytes } from '@edgeship/protocol';
import { SIGNATURE_PATTERN, verifyBatchSignature } from './signature.ts';

interface VerifyRequest {
  id: number;
  deviceIds: string[];
  /** The bodies end to end (one transferred buffer), and each one's length. */
  bytes: Uint8Array;
  lengths: number[];
  signatures: Array<string | undefined>;
}

interface VerifyAnswer {
  id: number;
  ok: boolean[];
}

// The worker: verifyBatchSignature (telemetry/signature.ts) in plain CommonJS, so the thread
// needs no TypeScript loader, with the patterns, the signed-bytes context and sodium-native's
// path handed over from that module. signature-pool.test.ts checks the two decide every case alike.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const sodium = require(workerData.sodium);
const DEVICE = new RegExp(...workerData.devicePattern);
const SIGNATURE = new RegExp(...workerData.signaturePattern);
const context = Buffer.from(workerData.context);
const check = (deviceId, body, signature) => {
  if (!signature || !DEVICE.test(deviceId) || !SIGNATURE.test(signature)) return false;
  const key = Buffer.from(deviceId, 'base64url');
  if (key.byteLength !== sodium.crypto_sign_PUBLICKEYBYTES) return false;
  return sodium.crypto_sign_verify_detached(Buffer.from(signature, 'base64url'), Buffer.concat([context, body]), key);
};
parentPort.on('message', (m) => {
  let at = 0;
  const ok = m.deviceIds.map((deviceId, i) => {
    const body = m.bytes.subarray(at, at + m.lengths[i]);
    at += m.lengths[i];
    return check(deviceId, body, m.signatures[i]);
  });
  parentPort.postMessage({ id: m.id, ok });
});
parentPort.postMessage({ ready: true });
`;

const require = createRequire(import.meta.url);

/** Batches per message to the worker (one event-loop turn's worth, at most this many). */
const MAX_PER_MESSAGE = 256;

interface Job {
  deviceId: string;
  body: Uint8Array;
  signature: string | undefined;
  resolve: (ok: boolean) => void;
}

/**
 * Batch signatures checked on a worker thread: an Ed25519 verify is the largest single cost of a
 * batch on the event loop, and a second core is usually there. The requests of one event-loop turn
 * go to the worker in one message. Until the worker is up (it starts on the first batch), and for
 * good if it fails, each signature is checked on the event loop instead: the same function
 * (telemetry/signature.ts) decides either way, so no batch is ever taken unchecked.
 */
export class SignatureVerifier {
  private worker: Worker | null = null;
  private ready = false;
  private failed = false;
  private queued: Job[] = [];
  private readonly inflight = new Map<number, Job[]>();
  private seq = 0;

  constructor(private readonly onFailure: (error: unknown) => void = () => {}) {}

  /** Resolves true only for the install's valid signature over exactly `body`; never rejects. */
  verify(deviceId: string, body: Uint8Array, signature: string | undefined): Promise<boolean> {
    if (!this.ready) {
      this.start();
      return Promise.resolve(verifyBatchSignature(deviceId, body, signature));
    }
    return new Promise<boolean>((resolve) => {
      this.queued.push({ deviceId, body, signature, resolve });
      if (this.queued.length === 1) setImmediate(this.flush);
      else if (this.queued.length >= MAX_PER_MESSAGE) this.flush();
    });
  }

  /** Whether signatures are being checked on the worker (tests). */
  get threaded(): boolean {
    return this.ready;
  }

  /** Resolves once the worker is up (or has failed, when signatures stay on the event loop). */
  async started(): Promise<boolean> {
    this.start();
    while (!this.ready && !this.failed) await new Promise((r) => setTimeout(r, 10));
    return this.ready;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.failed = true; // no restart
    this.fallBack();
    await worker?.terminate();
  }

  private readonly flush = () => {
    const jobs = this.queued;
    if (jobs.length === 0) return;
    this.queued = [];
    if (!this.worker || !this.ready) {
      for (const j of jobs) j.resolve(verifyBatchSignature(j.deviceId, j.body, j.signature));
      return;
    }
    const id = ++this.seq;
    this.inflight.set(id, jobs);
    // One buffer of its own, transferred: a socket's Buffer may be a view on a larger pooled one,
    // which a structured clone would copy whole.
    const lengths = jobs.map((j) => j.body.byteLength);
    const bytes = new Uint8Array(lengths.reduce((a, b) => a + b, 0));
    let at = 0;
    for (const j of jobs) {
      bytes.set(j.body, at);
      at += j.body.byteLength;
    }
    const request: VerifyRequest = {
      id,
      deviceIds: jobs.map((j) => j.deviceId),
      bytes,
      lengths,
      signatures: jobs.map((j) => j.signature),
    };
    this.worker.postMessage(request, [bytes.buffer]);
  };

  private start(): void {
    if (this.worker || this.failed) return;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: {
        devicePattern: [DEVICE_ID_PATTERN.source, DEVICE_ID_PATTERN.flags],
        signaturePattern: [SIGNATURE_PATTERN.source, SIGNATURE_PATTERN.flags],
        context: telemetrySignedBytes(new Uint8Array(0)),
        // The addon's path: the worker's eval'd source resolves nothing relative to this module.
        sodium: require.resolve('sodium-native'),
      },
    });
    this.worker = worker;
    worker.unref();
    worker.on('message', (m: VerifyAnswer | { ready: true }) => {
      if ('ready' in m) {
        this.ready = !this.failed;
        return;
      }
      const jobs = this.inflight.get(m.id);
      if (!jobs) return;
      this.inflight.delete(m.id);
      for (const [i, j] of jobs.entries()) j.resolve(m.ok[i] === true);
    });
    const fail = (error: unknown) => {
      if (this.failed) return;
      this.failed = true;
      this.onFailure(error);
      this.fallBack();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the signature worker exited (${code})`)));
  }

  /** Everything sent or waiting is checked here, on the event loop, from now on. */
  private fallBack(): void {
    this.ready = false;
    this.worker = null;
    const jobs = [...this.inflight.values()].flat().concat(this.queued);
    this.inflight.clear();
    this.queued = [];
    for (const j of jobs) j.resolve(verifyBatchSignature(j.deviceId, j.body, j.signature));
  }
}
