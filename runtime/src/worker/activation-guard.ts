/**
 * The guard after activation: a health check runs one sample input, but a release can pass it
 * and fail on real inputs (an operator that overflows on some values, a backend bug on some
 * shapes). So the first inferences of a release that replaced another are watched, and compared
 * with what the replaced release did in this worker.
 */
export interface GuardPolicy {
  /** How many inferences of the new release are watched. */
  inferences: number;
  /** Largest allowed increase in the share of bad calls (failed, or non-finite outputs). */
  maxIncrease: number;
}

export const DEFAULT_GUARD: GuardPolicy = { inferences: 50, maxIncrease: 0.05 };

export type Outcome = 'ok' | 'failed' | 'non-finite';

/** The guard's decision against a watched release. */
export interface Regression {
  model: string;
  release: string;
  /** The release it replaced: the one the device goes back to. */
  replaced: string;
  reason: string;
}

interface Tally {
  calls: number;
  failed: number;
  nonFinite: number;
}

const bad = (t: Tally) => t.failed + t.nonFinite;

/** The guard the runtime config asks for (null: `activationGuard: false`). */
export function guardFor(
  config: { activationGuard?: Partial<GuardPolicy> | false },
  onRegression: (regression: Regression) => void,
): ActivationGuard | null {
  return config.activationGuard === false
    ? null
    : new ActivationGuard({ ...DEFAULT_GUARD, ...config.activationGuard }, onRegression);
}

export class ActivationGuard {
  private readonly watches = new Map<string, { release: string; replaced: string; tally: Tally }>();
  private readonly seen = new Map<string, Tally>();

  constructor(
    private readonly policy: GuardPolicy,
    private readonly onRegression: (regression: Regression) => void,
  ) {}

  /** `release` now runs `model` in place of `replaced`: its first inferences are watched. */
  watch(model: string, release: string, replaced: string | null): void {
    if (!replaced || replaced === release) this.watches.delete(model);
    else this.watches.set(model, { release, replaced, tally: { calls: 0, failed: 0, nonFinite: 0 } });
  }

  /** One inference's outcome; calls onRegression once when the watched release fails the guard. */
  observe(model: string, release: string, outcome: Outcome): void {
    const all = this.tallyOf(release);
    count(all, outcome);
    const watch = this.watches.get(model);
    if (!watch || watch.release !== release) return;
    count(watch.tally, outcome);
    const { inferences, maxIncrease } = this.policy;
    const base = this.seen.get(watch.replaced);
    const baseShare = base && base.calls > 0 ? bad(base) / base.calls : 0;
    const allowed = (baseShare + maxIncrease) * inferences;
    // Decided early once the bad calls alone exceed the allowance for the whole window.
    if (bad(watch.tally) > allowed) {
      this.watches.delete(model);
      const { calls, failed, nonFinite } = watch.tally;
      this.onRegression({
        model,
        release,
        replaced: watch.replaced,
        reason:
          `${failed} failed and ${nonFinite} non-finite of its first ${calls} inferences, against ` +
          `${(baseShare * 100).toFixed(1)}% bad for ${watch.replaced} (allowed: +${maxIncrease * 100}%)`,
      });
    } else if (watch.tally.calls >= inferences) this.watches.delete(model);
  }

  /** Whether `model`'s current release is still under watch (status and tests). */
  watching(model: string): string | null {
    return this.watches.get(model)?.release ?? null;
  }

  private tallyOf(release: string): Tally {
    let tally = this.seen.get(release);
    if (!tally) {
      tally = { calls: 0, failed: 0, nonFinite: 0 };
      this.seen.set(release, tally);
    }
    return tally;
  }
}

function count(tally: Tally, outcome: Outcome): void {
  tally.calls += 1;
  if (outcome === 'failed') tally.failed += 1;
  if (outcome === 'non-finite') tally.nonFinite += 1;
}
