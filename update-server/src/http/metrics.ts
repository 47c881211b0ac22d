import type { MiddlewareHandler } from 'hono';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** One registry per server instance, so several servers in one process never share counters. */
export function createHttpMetrics() {
  const registry = new Registry();
  // Node's process metrics under their usual names (process_cpu_seconds_total, nodejs_heap_*,
  // nodejs_eventloop_lag_*), so standard Node dashboards and alerts work unchanged.
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'edgeship_http_requests_total',
    help: 'HTTP requests by route pattern, method and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'edgeship_http_request_duration_seconds',
    help: 'HTTP request latency by route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  // Label children by key: prom-client hashes a label object on every call otherwise.
  const counters = new Map<string, { inc(): void }>();
  const timers = new Map<string, { observe(v: number): void }>();
  /** Counts one request and its latency under its route pattern (the label Hono's routePath gives). */
  const record = (method: string, route: string, status: number, seconds: number) => {
    const countKey = `${method} ${status} ${route}`;
    let counter = counters.get(countKey);
    if (!counter) {
      counter = requests.labels({ method, route, status: String(status) });
      counters.set(countKey, counter);
    }
    counter.inc();
    const timeKey = `${method} ${route}`;
    let timer = timers.get(timeKey);
    if (!timer) {
      timer = duration.labels({ method, route });
      timers.set(timeKey, timer);
    }
    timer.observe(seconds);
  };
  const middleware: MiddlewareHandler = async (c, next) => {
    const started = performance.now();
    await next();
    // The route pattern, not the path, keeps label cardinality bounded.
    record(c.req.method, c.req.routePath || 'unmatched', c.res.status, (performance.now() - started) / 1000);
  };
  return { registry, middleware, record };
}

export type HttpMetrics = ReturnType<typeof createHttpMetrics>;
