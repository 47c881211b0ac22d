import type { MiddlewareHandler } from 'hono';
import {
  Counter,
  collectDefaultMetrics,
  Histogram,
  type MetricObjectWithValues,
  type MetricValueWithName,
  Registry,
} from 'prom-client';

type RequestLabel = 'method' | 'route';

/** One latency series in plain numbers: counts per bucket (not cumulative), sum and count. */
interface LatencySeries {
  labels: Record<RequestLabel, string>;
  buckets: Float64Array;
  sum: number;
  count: number;
}

/**
 * prom-client's Histogram, with its series kept in plain numbers that a request updates directly.
 * prom-client hashes and validates the label object on every `observe()`, even on a `labels()`
 * child; on a manifest check that cost more than the rest of the answer (a fifth of the fast
 * path's time). Its exposition is prom-client's own, computed at scrape time from these numbers
 * (metrics.test.ts compares both texts for the same observations).
 */
class PlainHistogram extends Histogram<RequestLabel> {
  private readonly bounds: readonly number[];
  private readonly family: { name: string; help: string };
  private readonly plain = new Map<string, LatencySeries>();

  constructor(config: { name: string; help: string; buckets: number[]; registers: Registry[] }) {
    super({ ...config, labelNames: ['method', 'route'] });
    this.bounds = [...config.buckets].sort((a, b) => a - b);
    this.family = { name: config.name, help: config.help };
  }

  /** The series of these labels, to keep and `add` to: looked up once, not per observation. */
  series(method: string, route: string): LatencySeries {
    const key = `${method} ${route}`;
    let found = this.plain.get(key);
    if (!found) {
      found = {
        labels: { method, route },
        buckets: new Float64Array(this.bounds.length + 1),
        sum: 0,
        count: 0,
      };
      this.plain.set(key, found);
    }
    return found;
  }

  /** One observation of `seconds` in `series`. */
  add(series: LatencySeries, seconds: number): void {
    const { bounds } = this;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    series.buckets[i]! += 1;
    series.sum += seconds;
    series.count += 1;
  }

  /** prom-client's three call forms, onto the plain series (nothing here calls it; kept whole). */
  override observe(first?: unknown, second?: unknown): void {
    const [labels, value] =
      typeof first === 'number'
        ? [{}, first]
        : typeof second === 'number'
          ? [first, second]
          : [(first as { labels?: object }).labels ?? {}, (first as { value: number }).value];
    const { method = '', route = '' } = labels as Partial<Record<RequestLabel, string>>;
    this.add(this.series(method, route), value);
  }

  override reset(): void {
    super.reset();
    // Histogram's constructor resets before this class's fields exist.
    this.plain?.clear();
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<RequestLabel>>> {
    const data = this.getForPromString();
    // As prom-client's get(): the series' labels merged into each value's own.
    return {
      ...data,
      values: data.values.map(({ sharedLabels, labels, ...rest }) => ({
        ...rest,
        labels: { ...labels, ...sharedLabels },
      })),
      // prom-client's type also asks for the `collect` hook, which its own get() never returns.
    } as unknown as MetricObjectWithValues<MetricValueWithName<RequestLabel>>;
  }

  /** What prom-client's Registry formats (it calls this when a metric has it; get() otherwise). */
  getForPromString() {
    const { name: family, help } = this.family;
    const name = `${family}_bucket`;
    const values: Array<{
      labels: Record<string, string | number>;
      sharedLabels: Record<string, string>;
      value: number;
      metricName: string;
      exemplar?: null;
    }> = [];
    for (const s of this.plain.values()) {
      if (s.count === 0) continue; // made ahead by a recorder, never observed: no series yet
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.buckets[i]!;
        values.push({ labels: { le }, sharedLabels: s.labels, value: acc, metricName: name, exemplar: null });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: name, exemplar: null },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${family}_sum` },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${family}_count` },
      );
    }
    return { name: family, help, type: 'histogram' as const, values, aggregator: 'sum' as const };
  }
}

/** One registry per server instance, so several servers in one process never share counters. */
export function createHttpMetrics() {
  const registry = new Registry();
  // Node's process metrics under their usual names (process_cpu_seconds_total, nodejs_heap_*,
  // nodejs_eventloop_lag_*), so standard Node dashboards and alerts work unchanged.
  collectDefaultMetrics({ register: registry });
  // Request counts in plain numbers, handed to prom-client at scrape time (its inc() hashes the
  // labels on every call, as observe() does: see PlainHistogram).
  const counts = new Map<string, { labels: Record<'method' | 'route' | 'status', string>; value: number }>();
  new Counter({
    name: 'edgeship_http_requests_total',
    help: 'HTTP requests by route pattern, method and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, value } of counts.values()) if (value > 0) this.inc(labels, value);
    },
  });
  const duration = new PlainHistogram({
    name: 'edgeship_http_request_duration_seconds',
    help: 'HTTP request latency by route pattern',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const countOf = (method: string, route: string, status: number) => {
    const key = `${method} ${status} ${route}`;
    let found = counts.get(key);
    if (!found) {
      found = { labels: { method, route, status: String(status) }, value: 0 };
      counts.set(key, found);
    }
    return found;
  };
  /** Counts one request and its latency under its route pattern (the label Hono's routePath gives). */
  const record = (method: string, route: string, status: number, seconds: number) => {
    countOf(method, route, status).value += 1;
    duration.add(duration.series(method, route), seconds);
  };
  /** `record` with its labels fixed: the series looked up once, not per request. */
  const recorder = (method: string, route: string, status: number) => {
    const count = countOf(method, route, status);
    const series = duration.series(method, route);
    return (seconds: number) => {
      count.value += 1;
      duration.add(series, seconds);
    };
  };
  const middleware: MiddlewareHandler = async (c, next) => {
    const started = performance.now();
    await next();
    // The route pattern, not the path, keeps label cardinality bounded.
    record(c.req.method, c.req.routePath || 'unmatched', c.res.status, (performance.now() - started) / 1000);
  };
  return { registry, middleware, record, recorder };
}

export type HttpMetrics = ReturnType<typeof createHttpMetrics>;
