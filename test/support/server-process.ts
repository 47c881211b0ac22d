import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { SOURCE_CONDITION_ARG } from './node-args.ts';

/** The real `edgeship-server` bin of this checkout (it runs the TypeScript sources). */
export const SERVER_BIN = resolve(import.meta.dirname, '../../update-server/bin/edgeship-server.mjs');

const START_TIMEOUT_MS = 20_000;

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote to stderr so far (for failure messages). */
  stderr: string[];
  /** SIGTERM, then SIGKILL after 5 s; resolves once it exited. */
  stop(): Promise<void>;
  /** SIGKILL: no shutdown hook runs (a crashed or OOM-killed process). */
  kill(): Promise<void>;
}

/**
 * Spawns `edgeship-server` with `args` (add `--port 0`) and waits for its
 * `{"event":"listening","url"}` line. DATABASE_URL is cleared from the environment, so only
 * the flags decide the database.
 */
export async function spawnServer(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<ServerProcess> {
  const child = spawn(process.execPath, [SOURCE_CONDITION_ARG, SERVER_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DATABASE_URL: undefined, ...env },
  });
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (text: string) => stderr.push(text));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      reject(
        new Error(`edgeship-server did not report listening in ${START_TIMEOUT_MS} ms: ${stderr.join('')}`),
      );
    }, START_TIMEOUT_MS);
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`edgeship-server ${why}: ${stderr.join('')}`));
    };
    child.once('error', (error) => fail(`could not start (${error.message})`));
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal}) before listening`));
    // pino logs share stdout: take the first line that is the listening event.
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: { event?: string; url?: string } | null = null;
      try {
        event = JSON.parse(line);
      } catch {
        return;
      }
      if (event?.event === 'listening' && typeof event.url === 'string') {
        clearTimeout(timer);
        resolveUrl(event.url);
      }
    });
  }).catch(async (error) => {
    child.kill('SIGKILL');
    await exited;
    throw error;
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    url,
    child,
    stderr,
    async stop() {
      if (!running()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (!running()) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
