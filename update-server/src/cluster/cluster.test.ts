import { afterAll, describe, expect, it } from 'vitest';
import type { ServerProcess } from '../../../test/support/server-process.ts';
import { type ClusterProcess, processCluster } from './testing.ts';

/**
 * Two real `edgeship-server` processes on one PostgreSQL schema, as behind a load balancer, with
 * their limits on the database (--rate-limit-store postgres) and a short leader interval: they
 * count one budget per client, run one canary monitor, and a killed leader is replaced.
 */

const LEADER_INTERVAL_MS = 1000;
const CANARY_INTERVAL_MS = 100;
const PUBLIC_PER_MINUTE = 20;
const AUTH_FAILURES_PER_MINUTE = 5;

const processes = processCluster();
let setup: Promise<{ a: ClusterProcess; b: ClusterProcess }> | undefined;

// Started by the first test (see processCluster).
function cluster() {
  setup ??= (async () => {
    const args = [
      ...['--leader-interval-ms', String(LEADER_INTERVAL_MS)],
      ...['--canary-interval-ms', String(CANARY_INTERVAL_MS)],
      ...['--rate-limit-store', 'postgres', '--public-per-minute', String(PUBLIC_PER_MINUTE)],
      ...['--auth-failures-per-minute', String(AUTH_FAILURES_PER_MINUTE)],
    ];
    // One after the other: the first bootstraps the schema, the second finds it.
    const a = await processes.start(args);
    const b = await processes.start(args);
    return { a, b };
  })();
  return setup;
}

afterAll(() => processes.close());

describe('two server processes on one PostgreSQL, as one', () => {
  it('share the public rate limit: the second refuses once the first used the budget', async () => {
    const { a, b } = await cluster();
    // Unknown channels still count (the limit comes before the lookup): 404 each, never 429.
    const statuses: number[] = [];
    for (let i = 0; i < PUBLIC_PER_MINUTE; i++) statuses.push((await fetch(manifestUrl(a, i))).status);
    expect(statuses).toEqual(Array(PUBLIC_PER_MINUTE).fill(404));
    const refused = await fetch(manifestUrl(b, 0));
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await refused.json()).error.code).toBe('E_RATE_LIMITED');
    // And the first refuses too: one budget, not one each.
    expect((await fetch(manifestUrl(a, 0))).status).toBe(429);
  });

  it('share the failed-authentication limit', async () => {
    const { a, b } = await cluster();
    const badToken = { authorization: `Bearer es_adm_${'0'.repeat(32)}` };
    for (let i = 0; i < AUTH_FAILURES_PER_MINUTE; i++)
      expect((await fetch(`${a.url}/v1/admin/whoami`, { headers: badToken })).status).toBe(401);
    // B saw none of these failures itself, and refuses before it looks the token up.
    const refused = await fetch(`${b.url}/v1/admin/whoami`, { headers: badToken });
    expect(refused.status).toBe(429);
    expect((await refused.json()).error.message).toMatch(/failed authentications/);
  });

  it('run one canary monitor, and another process takes over within one interval of a SIGKILL', async () => {
    const { a, b } = await cluster();
    const [ma, mb] = await Promise.all([scrape(a), scrape(b)]);
    expect([ma.leader, mb.leader].sort()).toEqual([0, 1]);
    const [leader, follower] = ma.leader === 1 ? [a, b] : [b, a];

    // Over several canary intervals the leader's monitor runs and the follower's does not.
    const before = await Promise.all([scrape(leader), scrape(follower)]);
    await sleep(CANARY_INTERVAL_MS * 6);
    const after = await Promise.all([scrape(leader), scrape(follower)]);
    expect(after[0].canaryRuns - before[0].canaryRuns).toBeGreaterThanOrEqual(2);
    expect(after[1].canaryRuns).toBe(0);
    expect(after[1].leader).toBe(0);

    // A crash (no shutdown hook, no unlock): PostgreSQL ends the session and frees the lock.
    await leader.kill();
    const killedAt = Date.now();
    let took = Number.POSITIVE_INFINITY;
    while (Date.now() - killedAt < LEADER_INTERVAL_MS * 5) {
      if ((await scrape(follower)).leader === 1) {
        took = Date.now() - killedAt;
        break;
      }
      await sleep(20);
    }
    console.log(`leader failover: ${took} ms after SIGKILL (leader interval ${LEADER_INTERVAL_MS} ms)`);
    // One interval, plus the scrape that sees it (a poll every 20 ms) and scheduling under load.
    expect(took).toBeLessThanOrEqual(LEADER_INTERVAL_MS + 250);
    const runsThen = (await scrape(follower)).canaryRuns;
    await sleep(CANARY_INTERVAL_MS * 6);
    expect((await scrape(follower)).canaryRuns - runsThen).toBeGreaterThanOrEqual(2);
  });
});

function manifestUrl(p: ServerProcess, i: number): string {
  return `${p.url}/v1/apps/nosuchapp/channels/c${i}/manifest`;
}

/** The leader gauge and the canary monitor's pass counter from a process's /metrics. */
async function scrape(p: ServerProcess): Promise<{ leader: number; canaryRuns: number }> {
  const text = await (await fetch(`${p.url}/metrics`)).text();
  const value = (name: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    if (!line) throw new Error(`${p.url}/metrics has no ${name}`);
    return Number(line.slice(name.length + 1));
  };
  return { leader: value('edgeship_leader'), canaryRuns: value('edgeship_canary_runs_total') };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
