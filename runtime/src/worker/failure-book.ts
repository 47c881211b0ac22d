import { codeOf, EdgeshipError, type ErrorCode, NotFoundError } from '@edgeship/protocol';
import { defaultOrtWasmPaths } from '../engines/ort-assets.ts';
import type { ModelStore } from '../store/model-store.ts';
import type { FailurePhase, ReleaseFailure } from '../store/release-failure.ts';
import { RUNTIME_VERSION } from '../version.ts';
import { ActivationError } from './activation-error.ts';
import type { RefusedRelease, RuntimeConfig } from './config.ts';
import {
  activationFingerprint,
  classifyFailure,
  DEFAULT_RETRY,
  type FailureContext,
  isOfferedAgain,
  isRefused,
  nextFailure,
  type RetryPolicy,
} from './failure-policy.ts';

/**
 * The releases that failed to activate on this device, kept in the model store, and what follows
 * from them (failure-policy.ts). The records are the truth; the updater's list of releases it
 * must not stage (`failed-releases` in the store's meta) is derived from them by `syncRefused`, before every check.
 */
export class FailureBook {
  constructor(
    private readonly store: ModelStore,
    private readonly fingerprint: string,
    private readonly policy: RetryPolicy,
    private readonly manifestVersion: () => Promise<number>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Remembers a failed activation of `release` and returns its record. */
  async record(model: string, release: string, error: unknown): Promise<ReleaseFailure> {
    const phase: FailurePhase = error instanceof ActivationError ? error.phase : 'health-check';
    const cause = classifyFailure(error, phase);
    const code: ErrorCode = codeOf(error);
    const message = error instanceof Error ? error.message : String(error);
    const ctx = await this.context();
    let recorded: ReleaseFailure | undefined;
    await this.store.updateReleaseFailures((all) => {
      recorded = nextFailure(all[release], { release, model, code, message, phase }, cause, ctx);
      all[release] = recorded;
      return all;
    });
    await this.syncRefused();
    return recorded!;
  }

  /** A release that activated: its record goes. */
  async forget(release: string): Promise<void> {
    if (!(release in (await this.store.releaseFailures()))) return;
    await this.store.updateReleaseFailures((all) => {
      delete all[release];
      return all;
    });
    await this.syncRefused();
  }

  /** runtime.reset(model): forgets every failure of the model, so its releases are tried again. */
  async reset(model: string): Promise<string[]> {
    const cleared: string[] = [];
    await this.store.updateReleaseFailures((all) => {
      for (const [id, record] of Object.entries(all)) {
        if (record.model !== model) continue;
        delete all[id];
        cleared.push(id);
      }
      return all;
    });
    await this.syncRefused();
    return cleared;
  }

  /**
   * After a verified manifest: model failures of releases it offers this device, when it is newer
   * than the one they failed under, are lifted. Returns the lifted ids.
   */
  async liftOffered(manifestVersion: number | null, offered: ReadonlySet<string>): Promise<string[]> {
    const all = await this.store.releaseFailures();
    const lift = Object.values(all).filter((r) => isOfferedAgain(r, manifestVersion, offered.has(r.release)));
    if (lift.length === 0) return [];
    await this.store.updateReleaseFailures((current) => {
      for (const r of lift) delete current[r.release];
      return current;
    });
    await this.syncRefused();
    return lift.map((r) => r.release);
  }

  /** One model's records, refused or due for a retry. */
  async ofModel(model: string): Promise<ReleaseFailure[]> {
    return Object.values(await this.store.releaseFailures()).filter((r) => r.model === model);
  }

  /** How status() reports a record: ISO times, and when it will be tried again (null: not by itself). */
  view(record: ReleaseFailure): RefusedRelease {
    const refused = isRefused(record, { now: this.now(), fingerprint: this.fingerprint });
    let retryAt: string | null = null;
    if (record.cause === 'environment') {
      // Not refused any more (backoff over, or the runtime or its options changed): the next load or check.
      retryAt = new Date(refused ? record.retryAt! : this.now()).toISOString();
    }
    return {
      release: record.release,
      code: record.code,
      message: record.message,
      cause: record.cause,
      phase: record.phase,
      failedAt: new Date(record.failedAt).toISOString(),
      attempts: record.attempts,
      refused,
      retryAt,
    };
  }

  /** Rewrites the updater's list of releases it must not stage: the ones refused now. */
  async syncRefused(): Promise<void> {
    const ctx = { now: this.now(), fingerprint: this.fingerprint };
    const refused = Object.values(await this.store.releaseFailures())
      .filter((r) => isRefused(r, ctx))
      .map((r) => r.release)
      .sort();
    await this.store.setMeta('failed-releases', refused);
  }

  /** The newest stored release of `model` whose environment failure is due (offline retries). */
  async dueStoredRetry(model: string): Promise<string | null> {
    const ctx = { now: this.now(), fingerprint: this.fingerprint };
    const due = [];
    for (const record of await this.ofModel(model)) {
      if (record.cause !== 'environment' || isRefused(record, ctx)) continue;
      if ((await this.store.getRelease(record.release))?.complete) due.push(record);
    }
    return due.sort((a, b) => b.failedAt - a.failedAt)[0]?.release ?? null;
  }

  /** Why a load has nothing to run: a refused release says why and when it is retried. */
  async nothingToLoad(model: string): Promise<EdgeshipError> {
    const ctx = { now: this.now(), fingerprint: this.fingerprint };
    const refused = (await this.ofModel(model)).filter((r) => isRefused(r, ctx));
    const latest = refused.sort((a, b) => b.failedAt - a.failedAt)[0];
    if (latest) return this.refusedError(latest);
    return new NotFoundError(`no release of ${model} is installed or offered`);
  }

  /** The error a load gives when every release of a model on offer is refused. */
  private refusedError(record: ReleaseFailure): EdgeshipError {
    const view = this.view(record);
    const when =
      view.retryAt === null
        ? 'it is not retried until a newer manifest offers it or runtime.reset() clears it'
        : `it is retried after ${view.retryAt}, or at once when the runtime or its options change`;
    return new EdgeshipError(
      record.code,
      `${record.release} failed to activate (${record.cause}: ${record.message}); ${when}`,
    );
  }

  private async context(): Promise<FailureContext> {
    return {
      now: this.now(),
      fingerprint: this.fingerprint,
      manifestVersion: await this.manifestVersion(),
      policy: this.policy,
    };
  }
}

/** The book for this runtime and its options: a change to either makes environment failures due. */
export function failureBookFor(
  config: RuntimeConfig,
  store: ModelStore,
  manifestVersion: () => Promise<number>,
): FailureBook {
  const fingerprint = activationFingerprint({
    runtimeVersion: RUNTIME_VERSION,
    wasmPaths: config.wasmPaths ?? defaultOrtWasmPaths(),
    tfjsWasmPaths: config.tfjsWasmPaths,
    backend: config.backend,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    userAgent: globalThis.navigator?.userAgent ?? '',
  });
  return new FailureBook(
    store,
    fingerprint,
    { ...DEFAULT_RETRY, ...config.activationRetry },
    manifestVersion,
  );
}
