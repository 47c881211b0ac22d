import type { ErrorCode } from '@edgeship/protocol';

/** Where the cause lies: the device (retried with backoff) or the release itself (refused). */
export type FailureCause = 'environment' | 'model';

/**
 * The step of an activation that failed: reading the stored files, starting an engine, the
 * health check, or the guard over its first inferences once active (worker/activation-guard.ts).
 */
export type FailurePhase = 'read' | 'engine' | 'health-check' | 'guard';

/**
 * One release that failed to activate on this device, as the store keeps it (one record per
 * release id, under one meta key). Times are epoch milliseconds.
 */
export interface ReleaseFailure {
  release: string;
  model: string;
  code: ErrorCode;
  message: string;
  cause: FailureCause;
  phase: FailurePhase;
  failedAt: number;
  /** Failures in a row under the same runtime version and options (the backoff exponent). */
  attempts: number;
  /** Environment failures: when a load or check may try it again. Model failures: null. */
  retryAt: number | null;
  /** The runtime version and activation options it failed under (see activationFingerprint). */
  fingerprint: string;
  /** The newest manifest version accepted when it failed: a model failure lifts on a newer one. */
  manifestVersion: number;
}

export type ReleaseFailures = Record<string, ReleaseFailure>;
