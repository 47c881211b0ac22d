import { EdgeshipError, type ErrorCode } from '@edgeship/protocol';
import { type Backend, errorText, type FallbackCode, type FallbackReason } from '../engines/engine.ts';
import type { OrtWasmPaths } from '../engines/ort-assets.ts';
import { NoBackendError } from '../engines/select.ts';
import type { FailureCause, FailurePhase, ReleaseFailure } from '../store/release-failure.ts';

/**
 * Which activation failures heal. A cause in the environment (ORT's WASM not fetched, no backend
 * on this device, a full disk, the network) may go away on its own or with the next deploy, so
 * the release is tried again with backoff, and at once when the runtime or its options change. A
 * cause in the release (bytes that do not match their signed hash, a model that started and then
 * failed its health check) will not: it stays refused until a newer manifest offers it again or
 * the app calls `runtime.reset(model)`.
 */

/**
 * A failed activation, with the step it failed in (the runtime core tags what it throws) and,
 * once an engine had started, the backend it ran on.
 */
export class ActivationError extends EdgeshipError {
  readonly backend: Backend | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    readonly phase: FailurePhase,
    options?: { cause?: unknown; backend?: Backend },
  ) {
    super(code, message, options);
    this.backend = options?.backend;
  }
}

export interface RetryPolicy {
  /** Wait after the first environment failure; each further failure in a row doubles it. */
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { initialMs: 60_000, maxMs: 6 * 3_600_000 };

// Codes that name the device's situation wherever they occur.
const ENVIRONMENT_CODES = new Set<string>(['E_QUOTA', 'E_NETWORK', 'E_HTTP', 'E_STALLED', 'E_TIMEOUT']);

// Candidates that were never started: the device lacks something, the model was not tried.
const ENVIRONMENT_FALLBACKS = new Set<FallbackCode>([
  'no-webgpu',
  'not-isolated',
  'single-core',
  'not-bundled',
  'not-available',
  'threads-fixed',
  'wasm-missing',
]);

// What an engine that could not start says: its WASM or worker script was not fetched or not
// WASM at all (an HTML error page served for a missing file), or the device ran out of memory.
const ENGINE_DID_NOT_START =
  /failed to fetch|dynamically imported module|importing a module script failed|networkerror|fetching of the wasm failed|failed to asynchronously prepare wasm|expected magic word|mime type|no available backend found|probe worker failed|probe gave no answer|out of memory/i;

/** Environment or model, by error code and by the step the activation failed in. */
export function classifyFailure(error: unknown, phase: FailurePhase): FailureCause {
  const chain = causeChain(error);
  if (chain.some((e) => e instanceof EdgeshipError && ENVIRONMENT_CODES.has(e.code))) return 'environment';
  if (phase === 'read') {
    // Stored bytes that no longer match the signed ones are the release's; a chunk evicted from
    // storage or a failed read is the device's.
    return chain.some((e) => e instanceof EdgeshipError && (e.code === 'E_HASH' || e.code === 'E_LENGTH'))
      ? 'model'
      : 'environment';
  }
  if (phase === 'engine') {
    const noBackend = chain.find((e): e is NoBackendError => e instanceof NoBackendError);
    if (noBackend) {
      // One candidate that could not start is enough: once the device is fixed it may run.
      if (noBackend.reasons.length === 0 || noBackend.reasons.some(isEnvironmentReason)) return 'environment';
      return 'model';
    }
    return chain.some((e) => ENGINE_DID_NOT_START.test(errorText(e))) ? 'environment' : 'model';
  }
  // The health check ran on an engine that started: a wrong answer is the model's.
  return 'model';
}

function isEnvironmentReason(reason: FallbackReason): boolean {
  if (ENVIRONMENT_FALLBACKS.has(reason.code)) return true;
  if (reason.code === 'non-finite' || reason.code === 'unsupported-op') return false;
  return ENGINE_DID_NOT_START.test(reason.reason);
}

function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (
    let e = error;
    e !== undefined && e !== null && chain.length < 8;
    e = (e as { cause?: unknown }).cause
  ) {
    chain.push(e);
    if (typeof e !== 'object') break;
  }
  return chain;
}

/**
 * The backoff before retry number `attempts + 1`: initialMs, doubling per failure in a row, capped.
 * No jitter: the retry is local (the release is already stored), so devices cannot stampede a server.
 */
export function retryDelayMs(attempts: number, policy: RetryPolicy = DEFAULT_RETRY): number {
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, attempts - 1));
}

/** What the activation depends on besides the release: a change in any of it retries at once. */
export function activationFingerprint(parts: {
  runtimeVersion: string;
  /** As resolved: the default paths move with each build of the app (content-hashed files). */
  wasmPaths: string | OrtWasmPaths;
  tfjsWasmPaths?: string;
  backend?: string;
  crossOriginIsolated: boolean;
  userAgent: string;
}): string {
  return JSON.stringify([
    parts.runtimeVersion,
    parts.wasmPaths,
    parts.tfjsWasmPaths ?? null,
    parts.backend ?? 'auto',
    parts.crossOriginIsolated,
    parts.userAgent,
  ]);
}

export interface FailureContext {
  now: number;
  fingerprint: string;
  manifestVersion: number;
  policy: RetryPolicy;
}

/** The record after a (further) failure of `release`: attempts count only under the same fingerprint. */
export function nextFailure(
  previous: ReleaseFailure | undefined,
  failure: { release: string; model: string; code: ErrorCode; message: string; phase: FailurePhase },
  cause: FailureCause,
  ctx: FailureContext,
): ReleaseFailure {
  const inARow = previous && previous.cause === cause && previous.fingerprint === ctx.fingerprint;
  const attempts = inARow ? previous.attempts + 1 : 1;
  return {
    ...failure,
    cause,
    failedAt: ctx.now,
    attempts,
    retryAt: cause === 'environment' ? ctx.now + retryDelayMs(attempts, ctx.policy) : null,
    fingerprint: ctx.fingerprint,
    manifestVersion: ctx.manifestVersion,
  };
}

/** True while the release must not be staged or activated. */
export function isRefused(record: ReleaseFailure, ctx: Pick<FailureContext, 'now' | 'fingerprint'>): boolean {
  if (record.cause === 'model') return true;
  if (record.fingerprint !== ctx.fingerprint) return false;
  return record.retryAt !== null && ctx.now < record.retryAt;
}

/** A model failure lifts when a manifest newer than the one it failed under offers the release again. */
export function isOfferedAgain(
  record: ReleaseFailure,
  manifestVersion: number | null,
  offered: boolean,
): boolean {
  return (
    record.cause === 'model' &&
    offered &&
    manifestVersion !== null &&
    manifestVersion > record.manifestVersion
  );
}
