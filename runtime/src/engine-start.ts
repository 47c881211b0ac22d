import { TimeoutError } from '@edgeship/protocol/errors';

/**
 * How long one engine start (a stored release read, its engine created and health-checked) may
 * take before the page gives up on the worker: `baseMs` plus `msPerMiB` for each MiB of the
 * release's files, since ORT copies and parses every byte. Generous on purpose: a start that is
 * only slow (a cold WASM compile on a busy 2-core machine took up to 12 s in Firefox under load 35, 20 s in the
 * demo) must never be cut off; one that cannot complete fails instead of hanging forever.
 */
export interface EngineStartBound {
  baseMs: number;
  msPerMiB: number;
}

export const DEFAULT_ENGINE_START_BOUND: EngineStartBound = { baseMs: 30_000, msPerMiB: 1_000 };

/**
 * The worker that replaces a timed-out one has this many times the bound. A stuck start (Firefox)
 * is cut at the first bound and usually runs in the fresh worker; a start that is only slow (a
 * low-end device, or a machine this busy: one step of the demo's start took 17 s under load 6 on
 * 2 cores, and more than 30 s twice in a row in a loaded CI run) must finish there, not fail.
 */
export const RESTARTED_BOUND_FACTOR = 4;

/** The bound on one step of an engine start, in the first worker or (`restarted`) its replacement. */
export function engineStartLimitMs(
  bytes: number,
  bound: EngineStartBound = DEFAULT_ENGINE_START_BOUND,
  restarted = false,
): number {
  const factor = restarted ? RESTARTED_BOUND_FACTOR : 1;
  return Math.round(factor * (bound.baseMs + (bound.msPerMiB * bytes) / 2 ** 20));
}

/**
 * An engine start that did not finish within its bound (engineStartLimitMs), in a first worker
 * and again in the fresh worker the runtime started in its place. A cause in the environment,
 * so nothing is recorded against the release: a later load tries it again.
 */
export class EngineStartTimeoutError extends TimeoutError {
  readonly phase = 'engine-start' as const;

  constructor(
    readonly model: string,
    readonly release: string,
    readonly timeoutMs: number,
    readonly restarted: boolean,
  ) {
    super(
      `${release} (model ${model}) did not start on its engine within ${timeoutMs} ms${restarted ? ', in a restarted worker too' : ''}`,
    );
  }
}
