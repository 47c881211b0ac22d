/**
 * Group commit: requests that arrive while a transaction runs wait and go together into the next
 * one. Each caller's promise settles only after the transaction holding its item has committed
 * (or failed), so an acknowledgement always means "on disk", and under load one commit carries
 * many batches instead of one.
 */
export class GroupCommit<T, R> {
  private queue: Array<{ item: T; resolve: (r: R) => void; reject: (e: unknown) => void }> = [];
  private running: Promise<void> | null = null;
  /** Items announced (`expect`) and not yet submitted or given up. */
  private onTheWay = 0;
  /** Wakes a group that waits for the items on their way (see pump). */
  private wake: (() => void) | null = null;

  /**
   * `lingerMs`: how long a group may wait for items announced with `expect` (requests already
   * being checked) before it commits without them.
   */
  constructor(
    private readonly commit: (items: T[]) => Promise<R[]>,
    private readonly maxGroup: number,
    private readonly maxQueued: number,
    private readonly lingerMs = 0,
  ) {}

  /**
   * An item is on its way (a request whose checks are under way): the next group may wait up to
   * `lingerMs` for it. Call the returned function once it is submitted or will not be.
   */
  expect(): () => void {
    this.onTheWay += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.onTheWay -= 1;
      this.wake?.();
    };
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Null when the queue is full: the caller answers "busy, retry later" rather than waiting. */
  submit(item: T): Promise<R> | null {
    if (this.queue.length >= this.maxQueued) return null;
    const done = new Promise<R>((resolve, reject) => this.queue.push({ item, resolve, reject }));
    this.wake?.();
    this.pump();
    return done;
  }

  /** Resolves once everything queued so far has been committed or failed. */
  async drain(): Promise<void> {
    while (this.running) await this.running;
  }

  private pump(): void {
    if (this.running || this.queue.length === 0) return;
    this.running = (async () => {
      // A transaction on SQLite runs without yielding to I/O, so one started at once carries the
      // one batch that started it; waiting for the rest of this event-loop turn lets the requests
      // already read from their sockets join (ten connections: groups of several, not of one).
      // While the queue still grows (up to a few turns), keep waiting: each turn costs microseconds.
      for (
        let turn = 0, seen = -1;
        turn < 4 && this.queue.length > seen && this.queue.length < this.maxGroup;
        turn++
      ) {
        seen = this.queue.length;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      // Items still on their way (requests between their body and their submit: the signature
      // worker, the limiter) join this group if they come within lingerMs. Every group has a
      // cost of its own (the transaction, the aggregates' update, the canary reads), and a busy
      // event loop hands over a request or two per turn: the fleet simulator's 10,000 devices
      // made groups of two batches. None on their way (one device alone): no wait.
      const deadline = performance.now() + this.lingerMs;
      while (this.onTheWay > 0 && this.queue.length < this.maxGroup && performance.now() < deadline) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(1, deadline - performance.now()));
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
      const group = this.queue.splice(0, this.maxGroup);
      try {
        const results = await this.commit(group.map((g) => g.item));
        for (const [i, g] of group.entries()) g.resolve(results[i]!);
      } catch (error) {
        for (const g of group) g.reject(error);
      }
    })().finally(() => {
      this.running = null;
      this.pump();
    });
  }
}
