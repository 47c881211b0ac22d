/**
 * When the page checks for updates on its own: every `intervalMs`, jittered so a fleet that
 * opened together does not check together, backed off exponentially while checks fail, paused
 * while the page is hidden (a background tab costs the server nothing), and at once when the
 * page comes back (if a check is due) or the network does. Runs in the page: only it sees
 * `visibilitychange`.
 */
export interface CheckScheduleOptions {
  intervalMs: number;
  /** Each wait is intervalMs × (1 ± jitter), uniformly (default 0.2). */
  jitter?: number;
  /** Longest wait after failures in a row (default 16 × intervalMs, at most 1 h beyond it). */
  maxBackoffMs?: number;
  check: () => Promise<unknown>;
  /** The page; tests pass their own. */
  page?: PageSignals;
  random?: () => number;
  now?: () => number;
}

/** What the schedule reads from the page. */
export interface PageSignals {
  hidden(): boolean;
  /** Subscribes to `visibilitychange` and `online`; returns the unsubscribe. */
  onChange(listener: (reason: 'visible' | 'hidden' | 'online') => void): () => void;
}

export const DEFAULT_CHECK_INTERVAL_MS = 5 * 60_000;

export class CheckSchedule {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private lastAttempt: number;
  /** Drawn once per attempt, so every look at "is a check due" sees the same wait. */
  private delayMs = 0;
  private running = false;
  private stopped = false;
  private readonly unsubscribe: () => void;
  private readonly page: PageSignals;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(private readonly options: CheckScheduleOptions) {
    this.page = options.page ?? browserPage();
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.lastAttempt = this.now();
    this.delayMs = this.drawDelayMs();
    this.unsubscribe = this.page.onChange((reason) => this.onPageChange(reason));
    this.schedule();
  }

  /** The wait from the last attempt to the next check. */
  get nextDelayMs(): number {
    return this.delayMs;
  }

  /** The interval, doubled per failure in a row up to the cap, jittered. */
  private drawDelayMs(): number {
    const { intervalMs, jitter = 0.2 } = this.options;
    const cap = this.options.maxBackoffMs ?? Math.min(16 * intervalMs, intervalMs + 3_600_000);
    const base = Math.min(intervalMs * 2 ** this.failures, Math.max(cap, intervalMs));
    return Math.round(base * (1 + jitter * (2 * this.random() - 1)));
  }

  stop(): void {
    this.stopped = true;
    this.clear();
    this.unsubscribe();
  }

  private onPageChange(reason: 'visible' | 'hidden' | 'online'): void {
    if (this.stopped) return;
    if (reason === 'hidden') {
      this.clear();
      return;
    }
    // Back online: the check that failed offline is not a server failure, and is due now.
    if (reason === 'online') {
      this.failures = 0;
      this.delayMs = this.drawDelayMs();
    }
    const due = reason === 'online' || this.now() - this.lastAttempt >= this.delayMs;
    if (due) void this.runCheck();
    else this.schedule();
  }

  private schedule(): void {
    this.clear();
    if (this.stopped || this.running || this.page.hidden()) return;
    const elapsed = this.now() - this.lastAttempt;
    this.timer = setTimeout(() => void this.runCheck(), Math.max(0, this.delayMs - elapsed));
  }

  private async runCheck(): Promise<void> {
    if (this.running || this.stopped || this.page.hidden()) return;
    this.clear();
    this.running = true;
    this.lastAttempt = this.now();
    try {
      await this.options.check();
      this.failures = 0;
    } catch {
      this.failures += 1;
    } finally {
      this.running = false;
      this.lastAttempt = this.now();
      this.delayMs = this.drawDelayMs();
      this.schedule();
    }
  }

  private clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** The real page; where there is no document (a worker created the runtime) it is never hidden. */
function browserPage(): PageSignals {
  const doc = globalThis.document as Document | undefined;
  return {
    hidden: () => doc?.visibilityState === 'hidden',
    onChange(listener) {
      const visibility = () => listener(doc?.visibilityState === 'hidden' ? 'hidden' : 'visible');
      const online = () => listener('online');
      doc?.addEventListener('visibilitychange', visibility);
      globalThis.addEventListener?.('online', online);
      return () => {
        doc?.removeEventListener('visibilitychange', visibility);
        globalThis.removeEventListener?.('online', online);
      };
    },
  };
}
