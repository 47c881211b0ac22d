import { signTelemetryBody, TELEMETRY_SIGNATURE_HEADER } from '@edgeship/protocol';
import type { TelemetryOutbox } from './outbox.ts';

export interface SenderOptions {
  /** `POST` endpoint for batches, e.g. `${server}/v1/telemetry`. */
  endpoint: string;
  /**
   * The install's private key (install-key.ts): each body is signed with it, and the server
   * refuses unsigned batches (401), so without it every batch is dropped.
   */
  installKey?: CryptoKey;
  fetch?: typeof fetch;
  /** First retry delay; doubles per failed attempt up to `maxDelayMs` (full jitter). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  random?: () => number;
  /** Most batches sent in one flush. */
  batchesPerFlush?: number;
}

export interface FlushResult {
  sent: number;
  discarded: number;
  /** Set when a retryable failure stopped the flush; the caller waits this long before the next. */
  retryInMs?: number;
}

/** Statuses the server will answer the same way however often it is asked: drop, do not retry. */
const PERMANENT_REFUSALS = new Set([400, 401, 404, 413, 415, 422]);

/**
 * Sends queued batches oldest first. A batch leaves the outbox only once the server
 * acknowledged it (2xx; a duplicate is acknowledged too, thanks to its idempotency key), so a
 * crash or a dropped connection at any point loses nothing and a retry is never double counted.
 */
export class TelemetrySender {
  private readonly fetch: typeof fetch;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly random: () => number;
  private readonly batchesPerFlush: number;
  private failures = 0;

  constructor(
    private readonly outbox: TelemetryOutbox,
    private readonly options: SenderOptions,
  ) {
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.baseDelayMs = options.baseDelayMs ?? 1_000;
    this.maxDelayMs = options.maxDelayMs ?? 5 * 60_000;
    this.random = options.random ?? Math.random;
    this.batchesPerFlush = options.batchesPerFlush ?? 20;
  }

  async flush(): Promise<FlushResult> {
    const result: FlushResult = { sent: 0, discarded: 0 };
    for (const { batch } of await this.outbox.peek(this.batchesPerFlush)) {
      let status: number;
      try {
        // Signed as sent: the signature covers these exact bytes, so a retry re-signs the same ones.
        const body = new TextEncoder().encode(JSON.stringify(batch));
        const headers: Record<string, string> = {
          'content-type': 'application/json',
          'idempotency-key': batch.batchId,
        };
        if (this.options.installKey) {
          headers[TELEMETRY_SIGNATURE_HEADER] = await signTelemetryBody(this.options.installKey, body);
        }
        const response = await this.fetch(this.options.endpoint, { method: 'POST', headers, body });
        status = response.status;
      } catch {
        status = 0; // offline or unreachable
      }
      if (status >= 200 && status < 300) {
        await this.outbox.acknowledge(batch.batchId);
        result.sent += 1;
        this.failures = 0;
      } else if (PERMANENT_REFUSALS.has(status)) {
        await this.outbox.discard(batch.batchId);
        result.discarded += 1;
      } else {
        await this.outbox.recordAttempt(batch.batchId);
        this.failures += 1;
        result.retryInMs = this.backoff();
        break;
      }
    }
    return result;
  }

  /** Exponential backoff with full jitter (uniform in [0, min(max, base * 2^failures))). */
  private backoff(): number {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(this.failures - 1, 30));
    return Math.floor(this.random() * ceiling);
  }
}
