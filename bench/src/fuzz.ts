// 8. Fuzz: the property-based request fuzzer of the node test (test/support/fuzz.ts) at scale:
// 10,000 random requests over every OpenAPI operation through app.request() and 1,000 over real
// HTTP on loopback, on SQLite and on PostgreSQL. Goal: no 5xx, every error the documented JSON,
// no unhandled rejection, the server healthy after. Counts, not timings, are the result.
import fc from 'fast-check';
import { describeRequest, fuzzRequests, fuzzTarget, send, violation } from '../../test/support/fuzz.ts';
import type { Benchmark, Goal, Row } from './result.ts';
import { plain } from './rows.ts';

const SEED = 17;

interface Pass {
  database: string;
  transport: 'app.request' | 'http';
  requests: number;
  seconds: number;
  statuses: Record<string, number>;
  violations: string[];
}

export const fuzz: Benchmark = async (ctx) => {
  const inProcess = ctx.quick ? 1000 : 10_000;
  const overHttp = ctx.quick ? 200 : 1000;
  const passes: Pass[] = [];
  const unhandled: string[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(String(reason));
  process.on('unhandledRejection', onUnhandled);
  let healthy = true;
  try {
    for (const database of ['SQLite', 'PostgreSQL'] as const) {
      const target = await fuzzTarget(database);
      const { t } = target;
      try {
        const arbitrary = fuzzRequests(target.operations, target.world);
        for (const [transport, count, seed] of [
          ['app.request', inProcess, SEED],
          ['http', overHttp, SEED + 1],
        ] as const) {
          const requests = fc.sample(arbitrary, { seed, numRuns: count });
          const pass: Pass = { database, transport, requests: 0, seconds: 0, statuses: {}, violations: [] };
          const started = performance.now();
          for (const request of requests) {
            const response = await send(request, {
              app: t.server.app,
              ...(transport === 'http' ? { baseUrl: t.server.url } : {}),
            });
            pass.requests += 1;
            pass.statuses[response.status] = (pass.statuses[response.status] ?? 0) + 1;
            const wrong = violation(request, response);
            if (wrong && pass.violations.length < 20)
              pass.violations.push(`${wrong}: ${describeRequest(request)}`);
          }
          pass.seconds = (performance.now() - started) / 1000;
          passes.push(pass);
          ctx.log(
            `${database} ${transport}: ${pass.requests} requests in ${pass.seconds.toFixed(1)} s, statuses ${JSON.stringify(pass.statuses)}, ${pass.violations.length} violations`,
          );
        }
        const health = await Promise.all(['/healthz', '/readyz'].map((p) => fetch(`${t.server.url}${p}`)));
        const whoami = await t.viewer.whoami().then(
          () => true,
          () => false,
        );
        healthy &&= health.every((r) => r.status === 200) && whoami;
      } finally {
        await target.stop();
      }
    }
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }

  const rows: Row[] = [];
  for (const p of passes) {
    const fivexx = Object.entries(p.statuses)
      .filter(([s]) => Number(s) >= 500)
      .reduce((n, [, c]) => n + c, 0);
    const label = `${p.database}, ${p.transport}`;
    rows.push(plain(`${label}: requests`, p.requests, 'requests'));
    rows.push(plain(`${label}: 5xx answers`, fivexx, 'responses'));
    rows.push(plain(`${label}: answers breaking the error contract`, p.violations.length, 'responses'));
    rows.push(plain(`${label}: time`, p.seconds, 's', `${Math.round(p.requests / p.seconds)} requests/s`));
  }
  const total = passes.reduce((n, p) => n + p.requests, 0);
  const totalViolations = passes.reduce((n, p) => n + p.violations.length, 0);
  const biggest = Math.max(...passes.map((p) => p.requests));
  const goals: Goal[] = [
    {
      goal: `0 5xx in ${biggest.toLocaleString('en-US')} fuzzed requests (each database, app.request)`,
      met: totalViolations === 0 && biggest >= 10_000,
      detail: `${total.toLocaleString('en-US')} requests in all, ${totalViolations} answers that were 5xx or not the JSON error${biggest < 10_000 ? ' (--quick: fewer than 10,000)' : ''}`,
    },
    {
      goal: 'no unhandled rejection; the server healthy after',
      met: unhandled.length === 0 && healthy,
      detail: `${unhandled.length} unhandled rejections; /healthz, /readyz and a token check ${healthy ? 'answered' : 'failed'}`,
    },
  ];
  return {
    name: 'fuzz',
    title: 'Fuzz: random requests over every OpenAPI route',
    settings: { seed: SEED, inProcess, overHttp, databases: ['SQLite', 'PostgreSQL'] },
    rows,
    goals,
    notes: [
      'Statuses per pass: ' +
        passes.map((p) => `${p.database} ${p.transport} ${JSON.stringify(p.statuses)}`).join('; '),
      'Rate limits raised for the run so the handlers answer; the limiters have tests of their own.',
    ],
    raw: { passes, unhandled },
  };
};
