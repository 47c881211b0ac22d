import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseServerCommand } from './config/command.ts';
import { DEFAULT_DASHBOARD_DIST, mountDashboard } from './routes/dashboard.ts';
import { startServer } from './server.ts';

/** The package's version: ../package.json from src/ (a checkout) and from dist/ (installed) alike. */
export const SERVER_VERSION: string = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
).version;

/**
 * `edgeship-server`: runs the update server until SIGINT/SIGTERM. Every option of startServer is a
 * flag (config/options.ts), each also read from its environment variable; `--help` lists them.
 */
export async function main(argv: string[]): Promise<void> {
  const parsed = parseServerCommand(argv, { version: SERVER_VERSION });
  if (!parsed.run) return;
  const { dashboard, ...options } = parsed.options;
  // The package ships the built dashboard; a checkout has it once `npm run build:dashboard` ran.
  const withDashboard = dashboard && existsSync(join(DEFAULT_DASHBOARD_DIST, 'index.html'));
  const server = await startServer({
    ...options,
    mount: withDashboard ? (app) => mountDashboard(app) : undefined,
  });
  serveUntilSignalled(server);
}

/**
 * Says where `server` listens in one machine-readable line on stdout, what the scripts and tests
 * that start a server process wait for (pino log lines may come before it), and closes it on
 * SIGINT or SIGTERM, then exits.
 */
export function serveUntilSignalled(server: { url: string; close(): Promise<void> }): void {
  process.stdout.write(`${JSON.stringify({ event: 'listening', url: server.url })}\n`);
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
