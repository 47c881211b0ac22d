import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_DASHBOARD_DIST, mountDashboard } from './routes/dashboard.ts';
import { startServer } from './server.ts';

/** The package's version: ../package.json from src/ (a checkout) and from dist/ (installed) alike. */
export const SERVER_VERSION: string = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
).version;

/**
 * `edgeship-server`: runs the update server until SIGINT/SIGTERM.
 * Flags override the environment (DATABASE_URL, EDGESHIP_DATA_DIR, PORT, HOST,
 * EDGESHIP_TELEMETRY_RETENTION_DAYS, EDGESHIP_TELEMETRY_AGGREGATE_RETENTION_DAYS,
 * EDGESHIP_TRUST_PROXY, EDGESHIP_METRICS_AUTH).
 */
export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string', default: process.env.EDGESHIP_DATA_DIR ?? '.data' },
      'database-url': { type: 'string', default: process.env.DATABASE_URL },
      'keys-dir': { type: 'string' },
      port: { type: 'string', default: process.env.PORT ?? '8787' },
      host: { type: 'string', default: process.env.HOST ?? '127.0.0.1' },
      'create-keys': { type: 'boolean' },
      'log-level': { type: 'string', default: process.env.LOG_LEVEL ?? 'info' },
      'webhook-url': { type: 'string', default: process.env.EDGESHIP_WEBHOOK_URL },
      'telemetry-retention-days': {
        type: 'string',
        default: process.env.EDGESHIP_TELEMETRY_RETENTION_DAYS,
      },
      'telemetry-aggregate-retention-days': {
        type: 'string',
        default: process.env.EDGESHIP_TELEMETRY_AGGREGATE_RETENTION_DAYS,
      },
      'trust-proxy': { type: 'string', default: process.env.EDGESHIP_TRUST_PROXY ?? '0' },
      'metrics-auth': { type: 'boolean', default: process.env.EDGESHIP_METRICS_AUTH === '1' },
      'no-dashboard': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  if (values.version) {
    process.stdout.write(`${SERVER_VERSION}\n`);
    return;
  }
  if (values.help) {
    process.stdout.write(
      'usage: edgeship-server [--data-dir .data] [--database-url postgres://…] [--keys-dir dir] [--port 8787] [--host 127.0.0.1] [--create-keys] [--webhook-url https://…]\n' +
        '       [--telemetry-retention-days 30] [--telemetry-aggregate-retention-days 90] [--trust-proxy 0] [--metrics-auth]\n' +
        '       [--no-dashboard] [--version]\n',
    );
    return;
  }
  // The package ships the built dashboard; a checkout has it once `npm run build:dashboard` ran.
  const dashboard = !values['no-dashboard'] && existsSync(join(DEFAULT_DASHBOARD_DIST, 'index.html'));
  const server = await startServer({
    dataDir: values['data-dir']!,
    databaseUrl: values['database-url'] || undefined,
    keysDir: values['keys-dir'],
    port: Number(values.port),
    host: values.host,
    createKeys: values['create-keys'],
    logLevel: values['log-level'] as 'info',
    webhookUrl: values['webhook-url'] || undefined,
    // Not a number (NaN) is refused by startServer with the option's name.
    telemetryRetentionDays: days(values['telemetry-retention-days']),
    telemetryAggregateRetentionDays: days(values['telemetry-aggregate-retention-days']),
    // Proxy hops whose X-Forwarded-For entries count (not a whole number: refused at start).
    trustProxy: Number(values['trust-proxy']),
    metricsAuth: values['metrics-auth'],
    mount: dashboard ? (app) => mountDashboard(app) : undefined,
  });
  // Machine-readable, for scripts and tests that start us (pino log lines may come before it).
  process.stdout.write(`${JSON.stringify({ event: 'listening', url: server.url })}\n`);
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

const days = (value: string | undefined) => (value ? Number(value) : undefined);
