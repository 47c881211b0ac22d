import { MAX_TELEMETRY_BATCH_BYTES, SignatureError, TELEMETRY_SIGNATURE_HEADER } from '@edgeship/protocol';
import type { Context } from 'hono';
import { Hono } from 'hono';
import { type RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import {
  BadJsonError,
  tooLarge as bodyTooLarge,
  rateLimited,
  UnprocessableError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../http/api-errors.ts';
import { MemoryRateLimiter, rateLimit } from '../http/rate-limit.ts';
import { readBody } from '../http/read-body.ts';
import { describeIssues } from '../http/render-error.ts';
import { batchInferences } from '../telemetry/aggregate.ts';
import { parseTelemetryBatch } from '../telemetry/batch-check.ts';
import { networkPrefix } from '../telemetry/network-prefix.ts';
import { checkBatchTime } from '../telemetry/retention.ts';
import type { TelemetryService } from '../telemetry/service.ts';
import { checkBatchSemantics } from '../telemetry/validate.ts';

export interface TelemetryRouteDeps {
  telemetry: TelemetryService;
  clientAddress: (c: Context) => string;
  /**
   * Limiters on a shared store (http/shared-limits.ts), so that N processes give a device its
   * budget once; in memory, per process, when absent.
   */
  deviceLimiter?: RateLimiterAbstract;
  addressLimiter?: RateLimiterAbstract;
}

/**
 * `POST /v1/telemetry`: one batch per request (see runtime/src/telemetry/sender.ts). 202 once the
 * batch is committed, and 202 again, with `status: "duplicate"`, for a retry of a counted batch.
 * Each batch is signed by its install's key (`Edgeship-Signature` over the exact body bytes, see
 * protocol/src/install-key.ts); a missing or wrong signature is 401 E_SIGNATURE.
 * Refusals are typed: 400 E_BAD_JSON / E_VALIDATION, 413 E_TOO_LARGE, 415, 422 E_VALIDATION
 * (consistent JSON that names unknown releases or bins), 422 E_TOO_OLD / E_FROM_FUTURE (windowEnd
 * outside what the retention can de-duplicate, see telemetry/retention.ts), 429 E_RATE_LIMITED
 * (retry later). Every 4xx but 429 is permanent: the device drops the batch.
 */
export function createTelemetryRoutes(deps: TelemetryRouteDeps) {
  const { telemetry } = deps;
  const app = new Hono();
  const perDevice =
    deps.deviceLimiter ??
    new MemoryRateLimiter({ points: telemetry.options.perDevicePerMinute, duration: 60 });

  app.post(
    '/telemetry',
    rateLimit({
      points: telemetry.options.perAddressPerMinute,
      windowSec: 60,
      key: deps.clientAddress,
      limiter: deps.addressLimiter,
    }),
    async (c) => {
      if (!c.req.header('content-type')?.startsWith('application/json')) {
        throw new UnsupportedMediaTypeError('send the batch as application/json');
      }
      // From its body on, the batch is on its way to the group commit, which may wait for it.
      const arrived = telemetry.expectBatch();
      try {
        return await checkAndIngest(c, arrived);
      } finally {
        arrived();
      }
    },
  );

  async function checkAndIngest(c: Context, arrived: () => void) {
    const bytes = await readBody(c, MAX_TELEMETRY_BATCH_BYTES, tooLarge);
    let body: unknown;
    try {
      body = JSON.parse(utf8Strict.decode(bytes));
    } catch {
      throw new BadJsonError('the body is not valid JSON');
    }
    // The one public-key operation per batch: only the install's key can speak for it. It runs
    // on the signature worker while the schema is checked here; the schema's answer comes first.
    const claimed = (body as { deviceId?: unknown } | null)?.deviceId;
    const deviceId = typeof claimed === 'string' ? claimed : '';
    const signed = telemetry.signatures.verify(deviceId, bytes, c.req.header(TELEMETRY_SIGNATURE_HEADER));
    // The protocol schema, with a fast path for the valid batches (telemetry/batch-check.ts).
    const parsed = parseTelemetryBatch(body);
    if (!parsed.success) throw new ValidationError(describeIssues(parsed.error.issues));
    const batch = parsed.data;
    if (!(await signed) || batch.deviceId !== deviceId) {
      throw new SignatureError(
        `a batch is signed by its install's key (${TELEMETRY_SIGNATURE_HEADER} header)`,
      );
    }
    const key = c.req.header('idempotency-key');
    if (key !== undefined && key !== batch.batchId) {
      throw new ValidationError('the Idempotency-Key header differs from batchId');
    }
    checkBatchTime(batch, telemetry.now().getTime(), telemetry.retention);
    await consume(perDevice, batch.deviceId);
    await checkBatchSemantics(batch, telemetry.catalog);
    if (batchInferences(batch) > telemetry.options.deviceCap.inferencesPerWindow) {
      throw new UnprocessableError('the batch alone exceeds what one device may report per window');
    }
    arrived();
    const pending = telemetry.ingest(batch, networkPrefix(deps.clientAddress(c)));
    if (!pending) throw retryLater(1, 'the server is busy');
    const outcome = await pending;
    if (outcome === 'capped') {
      const windowMs = telemetry.windowSec * 1000;
      const retryAfter = Math.max(1, Math.ceil((windowMs - (telemetry.now().getTime() % windowMs)) / 1000));
      throw retryLater(retryAfter, 'this device has sent its share for this window');
    }
    return c.json({ batchId: batch.batchId, status: outcome }, 202);
  }
  return app;
}

// Stateless between calls (no `stream` option): one decoder for every request.
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

const tooLarge = () => bodyTooLarge(`a batch is at most ${MAX_TELEMETRY_BATCH_BYTES} bytes`);

const retryLater = (seconds: number, why: string) => rateLimited(why, seconds);

async function consume(limiter: RateLimiterAbstract, key: string) {
  // In memory the counters are read at once (MemoryRateLimiter.take): no promise per batch. A
  // refusal asks consume() for its wait, one point more on a budget already spent.
  if (limiter instanceof MemoryRateLimiter) {
    const taken = limiter.take(key);
    if (taken === true || (taken !== false && (await taken))) return;
  }
  try {
    await limiter.consume(key);
  } catch (error) {
    if (!(error instanceof RateLimiterRes)) throw error;
    throw retryLater(Math.max(1, Math.ceil(error.msBeforeNext / 1000)), 'too many batches from this device');
  }
}
