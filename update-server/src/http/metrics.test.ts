import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../../test/support/server.ts';

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
  });
});
