/**
 * `npm start`: the update server on the embedded SQLite database and filesystem blob store in
 * .data/, development keys created on first start, the demo models published (int8, signed) with
 * a rollout, and the demo PWA and the dashboard served on one local port. A second start reuses
 * .data/ and loses nothing; Ctrl-C shuts down cleanly.
 *
 * Environment: EDGESHIP_DATA_DIR (.data), PORT (8787), HOST (127.0.0.1).
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runEdgeship } from './start/run.ts';

const repo = resolve(fileURLToPath(new URL('..', import.meta.url)));
const dataDir = resolve(process.env.EDGESHIP_DATA_DIR ?? join(repo, '.data'));
const port = Number(process.env.PORT ?? 8787);
// crypto.subtle (the runtime's signature checks) exists only in secure contexts: https, or http
// on localhost. Serving the demo to other machines over plain http on a LAN does not work.
const host = process.env.HOST ?? '127.0.0.1';

const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const { server, url, published } = await runEdgeship({
    repo,
    dataDir,
    port,
    host,
    logLevel: (process.env.LOG_LEVEL as 'info' | undefined) ?? 'warn',
    say,
  });
  say('');
  say(`  Demo PWA   ${url}/`);
  say(
    `  Dashboard  ${url}/dashboard/  (operator token: ${server.tokens?.operator ?? `see ${dataDir}/tokens.json`})`,
  );
  say(`  API        ${url}/v1/openapi.json  ·  ${url}/metrics`);
  say(`  Data       ${dataDir}${published.length ? `  ·  published ${published.join(', ')}` : ''}`);
  say('');
  say('  Ctrl-C stops the server.');
  // Machine-readable, for scripts and tests that start us.
  say(JSON.stringify({ event: 'listening', url }));

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`start: ${signal}, shutting down`);
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error) => {
  process.stderr.write(`start: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
