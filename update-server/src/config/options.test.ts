import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CANARY_POLICY } from '../canary/analysis.ts';
import { SERVER_VERSION } from '../main.ts';
import { parseServerCommand } from './command.ts';
import { envName, OPTION_COVERAGE, SERVER_OPTIONS } from './options.ts';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function parse(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const printed: string[] = [];
  const parsed = parseServerCommand(argv, { version: SERVER_VERSION, env, write: (t) => printed.push(t) });
  return { parsed, printed: printed.join('') };
}

function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const { parsed } = parse(argv, env);
  if (!parsed.run) throw new Error('expected options to run with');
  return parsed.options;
}

describe('edgeship-server flags', () => {
  it('cover every option of startServer that is not an object or function', () => {
    const flags = new Set(SERVER_OPTIONS.map((s) => s.flag));
    for (const [option, coverage] of Object.entries(OPTION_COVERAGE)) {
      if (!Array.isArray(coverage)) continue;
      expect(coverage.length, option).toBeGreaterThan(0);
      for (const flag of coverage) expect(flags.has(flag), `--${flag} (for ${option})`).toBe(true);
    }
    // Each flag is claimed by one option: no stray flag that sets nothing documented.
    const claimed = Object.values(OPTION_COVERAGE).flatMap((c) => (Array.isArray(c) ? c : []));
    expect([...flags].filter((f) => !claimed.includes(f))).toEqual(['no-dashboard']);
  });

  it('are each listed by --help with its environment variable, and documented in the README', () => {
    const { parsed, printed } = parse(['--help']);
    expect(parsed.run).toBe(false);
    for (const spec of SERVER_OPTIONS) {
      expect(printed, spec.flag).toContain(`--${spec.flag}`);
      expect(printed, spec.flag).toContain(envName(spec));
      expect(README, `README documents --${spec.flag}`).toContain(`\`--${spec.flag}`);
    }
  });

  it('print the package version with --version', () => {
    const { parsed, printed } = parse(['--version']);
    expect(parsed.run).toBe(false);
    expect(printed.trim()).toBe(
      JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version,
    );
  });

  it('land in the server options: canary policy, limits, store, retention, webhook, proxies', () => {
    const o = run([
      '--database-url',
      'postgres://db/edgeship',
      '--canary-min-installs',
      '50',
      '--canary-alpha',
      '0.005',
      '--shadow-min-agreement',
      '0.95',
      '--canary-max-installs-per-prefix',
      '16',
      '--public-per-minute',
      '100',
      '--rate-limit-store',
      'redis',
      '--redis-url',
      'redis://127.0.0.1:6379',
      '--telemetry-retention-days',
      '14',
      '--webhook-url',
      'https://hooks.example/edgeship',
      '--webhook-attempts',
      '3',
      '--trust-proxy',
      '1',
      '--manifest-ttl-days',
      '2',
      '--leader-interval-ms',
      '1000',
      '--no-dashboard',
    ]);
    expect(o.databaseUrl).toBe('postgres://db/edgeship');
    expect(o.canary?.policy).toMatchObject({
      minInstalls: 50,
      alpha: 0.005,
      minPrefixes: DEFAULT_CANARY_POLICY.minPrefixes,
    });
    expect(o.canary?.shadow?.minAgreement).toBe(0.95);
    expect(o.canary?.caps?.maxInstallsPerPrefix).toBe(16);
    expect(o.canary?.webhook?.attempts).toBe(3);
    expect(o.rateLimits).toMatchObject({
      publicPerMinute: 100,
      adminPerMinute: 1200,
      authFailuresPerMinute: 30,
    });
    expect(o.rateLimitStore).toMatchObject({ kind: 'redis', redisUrl: 'redis://127.0.0.1:6379' });
    expect(o.telemetryRetentionDays).toBe(14);
    expect(o.webhookUrl).toBe('https://hooks.example/edgeship');
    expect(o.trustProxy).toBe(1);
    expect(o.manifestTtlMs).toBe(2 * 86_400_000);
    expect(o.leaderIntervalMs).toBe(1000);
    expect(o.dashboard).toBe(false);
    expect(o.canary?.enabled).toBeUndefined();
  });

  it('read the environment when a flag is absent, and a flag wins over it', () => {
    const env = {
      DATABASE_URL: 'postgres://env/db',
      PORT: '9000',
      EDGESHIP_CANARY_MIN_INSTALLS: '40',
      EDGESHIP_METRICS_AUTH: '1',
      EDGESHIP_NO_CANARY: '1',
      EDGESHIP_WEBHOOK_SECRET: `whsec_${Buffer.alloc(24, 1).toString('base64')}`,
    };
    const o = run(['--port', '9100'], env);
    expect(o.databaseUrl).toBe('postgres://env/db');
    expect(o.port).toBe(9100);
    expect(o.canary?.policy?.minInstalls).toBe(40);
    expect(o.metricsAuth).toBe(true);
    expect(o.canary?.enabled).toBe(false);
    expect(o.canary?.webhook?.secret).toBe(env.EDGESHIP_WEBHOOK_SECRET);
    expect(() => run([], { EDGESHIP_WEBHOOK_SECRET: 'whsec_c2hvcnQ=' })).toThrow(/at least 24 bytes/);
    expect(o.dashboard).toBe(true);
    // A switch's variable at 0 leaves it off (commander alone would turn it on).
    expect(run([], { EDGESHIP_METRICS_AUTH: '0' }).metricsAuth).toBe(false);
  });

  it('refuse a bad value with the flag name, and an unknown flag', () => {
    expect(() => run(['--port', 'eighty'])).toThrow(/--port/);
    expect(() => run(['--canary-alpha', '2'])).toThrow(/--canary-alpha/);
    expect(() => run(['--trust-proxy', '1.5'])).toThrow(/--trust-proxy.*whole number/);
    expect(() => run(['--rate-limit-store', 'memcached'])).toThrow(/--rate-limit-store/);
    expect(() => run([], { EDGESHIP_CANARY_MIN_INSTALLS: 'many' })).toThrow(/--canary-min-installs/);
    expect(() => run(['--no-such-flag'])).toThrow(/unknown option/);
  });
});
