import { EdgeshipError, type ErrorCode } from '@edgeship/protocol/errors';
import type { Backend } from '../engines/engine.ts';
import type { FailurePhase } from '../store/release-failure.ts';

/**
 * A failed activation, with the step it failed in (the runtime core tags what it throws) and,
 * once an engine had started, the backend it ran on. Its
 * code follows from the step: a release that did not load or failed its health check is
 * E_HEALTH_CHECK whatever the cause; a failed read keeps its cause's code (E_HASH for corrupt
 * bytes, E_QUOTA, …), and is E_NOT_FOUND when the cause has none.
 */
export class ActivationError extends EdgeshipError {
  readonly backend: Backend | undefined;

  constructor(
    readonly phase: FailurePhase,
    message: string,
    options?: { cause?: unknown; backend?: Backend },
  ) {
    super(activationCode(phase, options?.cause), message, options);
    this.backend = options?.backend;
  }
}

function activationCode(phase: FailurePhase, cause: unknown): ErrorCode {
  if (phase !== 'read') return 'E_HEALTH_CHECK';
  return cause instanceof EdgeshipError ? cause.code : 'E_NOT_FOUND';
}
