import { Counter, Histogram, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../../test/support/server.ts';
import { createHttpMetrics } from './metrics.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

/** Samples of one metric family in Prometheus text format: name{labels} → value. */
function samples(text: string, name: string): number[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
}

describe('/metrics', () => {
  it("carries Node's process metrics under their usual names, with live values", async () => {
    const scrape = async () => (await fetch(`${t.server.url}/metrics`)).text();
    const first = await scrape();
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_active_handles_total',
    ]) {
      expect(first, name).toContain(`# TYPE ${name} `);
      expect(samples(first, name).length, name).toBeGreaterThan(0);
    }
    expect(samples(first, 'process_resident_memory_bytes')[0]).toBeGreaterThan(1_000_000);
    expect(samples(first, 'process_start_time_seconds')[0]).toBeLessThanOrEqual(Date.now() / 1000);
    // CPU time is read at each scrape: burn some and it grows.
    const until = performance.now() + 50;
    while (performance.now() < until) Math.sqrt(Math.random());
    const second = await scrape();
    expect(samples(second, 'process_cpu_user_seconds_total')[0]).toBeGreaterThan(
      samples(first, 'process_cpu_user_seconds_total')[0]!,
    );
  });

  it('says this process leads (one process on SQLite always does)', async () => {
    const text = await (await fetch(`${t.server.url}/metrics`)).text();
    expect(samples(text, 'edgeship_leader')).toEqual([1]);
    expect(samples(text, 'edgeship_canary_runs_total').length).toBe(1);
    expect(samples(text, 'edgeship_webhook_pending')).toEqual([0]);
  });
});

describe('request metrics in plain numbers', () => {
  /** The same two families on prom-client's own classes: what the exposition must equal. */
  function reference() {
    const registry = new Registry();
    const requests = new Counter({
      name: 'edgeship_http_requests_total',
      help: 'HTTP requests by route pattern, method and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    });
    const duration = new Histogram({
      name: 'edgeship_http_request_duration_seconds',
      help: 'HTTP request latency by route pattern',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    return (method: string, route: string, status: number, seconds: number) => {
      requests.inc({ method, route, status: String(status) });
      duration.observe({ method, route }, seconds);
      return registry;
    };
  }
  const families = (text: string) =>
    text
      .split('\n\n')
      .filter((f) => f.includes('edgeship_http_'))
      .join('\n\n');
  // Every bucket edge, below the first, past the last, and several series and statuses.
  const observations: Array<[string, string, number, number]> = [
    ['GET', '/v1/apps/:app/channels/:channel/manifest', 200, 0.0004],
    ['GET', '/v1/apps/:app/channels/:channel/manifest', 304, 0.001],
    ['GET', '/v1/apps/:app/channels/:channel/manifest', 304, 0.0011],
    ['GET', '/v1/chunks/:sha256', 200, 0.05],
    ['GET', '/v1/chunks/:sha256', 206, 2.5],
    ['POST', '/v1/telemetry', 202, 7],
    ['GET', 'unmatched', 404, 0],
  ];

  it('are exposed as prom-client exposes the same observations, text and JSON', async () => {
    const ref = reference();
    const ours = createHttpMetrics();
    let refRegistry = new Registry();
    // A recorder made ahead (as the fast path does at start-up) exposes nothing until it counts.
    const unused = ours.recorder('HEAD', '/v1/apps/:app/channels/:channel/manifest', 200);
    let fixed: ((seconds: number) => void) | undefined;
    for (const [method, route, status, seconds] of observations) {
      refRegistry = ref(method, route, status, seconds);
      if (status === 304) {
        fixed ??= ours.recorder(method, route, status);
        fixed(seconds);
      } else ours.record(method, route, status, seconds);
    }
    const text = families(await ours.registry.metrics());
    expect(text).not.toContain('HEAD');
    expect(text).toBe(families(await refRegistry.metrics()));
    expect(text).toContain(
      'edgeship_http_request_duration_seconds_bucket{le="0.001",method="GET",route="/v1/apps/:app/channels/:channel/manifest"} 2',
    );
    expect(text).toContain(
      'edgeship_http_requests_total{method="POST",route="/v1/telemetry",status="202"} 1',
    );
    const json = async (r: Registry) =>
      (await r.getMetricsAsJSON()).filter((m) => m.name.startsWith('edgeship_http_'));
    expect(await json(ours.registry)).toEqual(await json(refRegistry));
    unused(0.001);
    expect(families(await ours.registry.metrics())).toContain('method="HEAD"');
  });

  it('count on between scrapes, and start over after a reset', async () => {
    const ours = createHttpMetrics();
    ours.record('GET', '/healthz', 200, 0.0001);
    const count = async () =>
      samples(await ours.registry.metrics(), 'edgeship_http_request_duration_seconds_count');
    expect(await count()).toEqual([1]);
    ours.record('GET', '/healthz', 200, 0.0001);
    expect(await count()).toEqual([2]);
    expect(samples(await ours.registry.metrics(), 'edgeship_http_requests_total')).toEqual([2]);
    ours.registry.resetMetrics();
    expect(await count()).toEqual([]);
  });
});
