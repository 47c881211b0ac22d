/**
 * The timers of a loop the leader runs (the canary monitor, the webhook outbox): a periodic tick
 * and one pending wake-up, both unref'd (they never hold the process open), cleared together
 * when the loop pauses.
 */
export class LoopTimers {
  private tick: NodeJS.Timeout | null = null;
  private wake: NodeJS.Timeout | null = null;

  /** Calls `fn` every `ms` from now on. */
  every(ms: number, fn: () => void): void {
    if (this.tick) clearInterval(this.tick);
    this.tick = setInterval(fn, ms);
    this.tick.unref();
  }

  /** Calls `fn` once after `ms`, in place of a wake-up still pending. */
  wakeAfter(ms: number, fn: () => void): void {
    if (this.wake) clearTimeout(this.wake);
    this.wake = setTimeout(() => {
      this.wake = null;
      fn();
    }, ms);
    this.wake.unref();
  }

  /** Whether a wake-up is pending. */
  get waking(): boolean {
    return this.wake !== null;
  }

  clear(): void {
    if (this.tick) clearInterval(this.tick);
    if (this.wake) clearTimeout(this.wake);
    this.tick = null;
    this.wake = null;
  }
}
