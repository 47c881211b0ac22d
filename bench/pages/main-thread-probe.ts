// How busy the main thread is while a benchmark runs: Long Tasks (>50 ms, what Lighthouse counts
// as blocking) and the lag of a 4 ms timer chain, which sees shorter stalls too.

export interface BlockingReport {
  longTasks: number;
  longTaskMs: number;
  /** Sum over long tasks of (duration - 50 ms): Total Blocking Time. */
  totalBlockingMs: number;
  /** Largest delay of the probe timer beyond its 4 ms period. */
  maxLagMs: number;
  /** Sum of probe delays beyond 4 ms + 4 ms jitter allowance. */
  lagMs: number;
  windowMs: number;
}

export function startBlockingProbe(): () => BlockingReport {
  const tasks: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => tasks.push(...list.getEntries()));
  observer.observe({ type: 'longtask', buffered: false });
  const PERIOD = 4;
  let maxLagMs = 0;
  let lagMs = 0;
  let last = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const started = last;
  const tick = () => {
    const now = performance.now();
    const lag = now - last - PERIOD;
    if (lag > maxLagMs) maxLagMs = lag;
    if (lag > PERIOD) lagMs += lag - PERIOD;
    last = now;
    timer = setTimeout(tick, PERIOD);
  };
  timer = setTimeout(tick, PERIOD);
  return () => {
    clearTimeout(timer);
    tick();
    clearTimeout(timer);
    for (const entry of observer.takeRecords()) tasks.push(entry);
    observer.disconnect();
    const longTaskMs = tasks.reduce((n, t) => n + t.duration, 0);
    return {
      longTasks: tasks.length,
      longTaskMs,
      totalBlockingMs: tasks.reduce((n, t) => n + Math.max(0, t.duration - 50), 0),
      maxLagMs: Math.max(0, maxLagMs),
      lagMs,
      windowMs: performance.now() - started,
    };
  };
}
