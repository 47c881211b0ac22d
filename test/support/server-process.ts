import { type ChildProcess, spawn } from 'node:child_process';
import { basename, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { SOURCE_CONDITION_ARG } from './node-args.ts';

/** The real `edgeship-server` bin of this checkout (it runs the TypeScript sources). */
export const SERVER_BIN = resolve(import.meta.dirname, '../../update-server/bin/edgeship-server.mjs');

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote to stderr so far (for failure messages). */
  stderr: string[];
  /** SIGTERM, then SIGKILL after `graceMs` (default 5 s); resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL: no shutdown hook runs (a crashed or OOM-killed process). */
  kill(): Promise<void>;
}

export interface SpawnOptions {
  /** Another script to run (default the bin): anything that prints the same listening line. */
  script?: string;
  /** Node flags before the script, e.g. SOURCE_NODE_ARGS for a TypeScript script. */
  nodeArgs?: readonly string[];
  /** How long it may take to report listening (default 30 s). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * The one spawner of real server processes for tests and the fleet simulator: runs
 * `edgeship-server` (or `script`) with `args` (add `--port 0`) and waits for its
 * `{"event":"listening","url"}` line. DATABASE_URL is cleared from the environment, so only
 * the flags decide the database.
 */
export async function spawnServer(args: readonly string[], opts: SpawnOptions = {}): Promise<ServerProcess> {
  const script = opts.script ?? SERVER_BIN;
  const name = opts.script ? basename(opts.script) : 'edgeship-server';
  const timeoutMs = opts.timeoutMs ?? 30_000;
  // The condition resolves @edgeship/* to their sources for any script (the bin adds it itself).
  const nodeArgs = [SOURCE_CONDITION_ARG, ...(opts.nodeArgs ?? [])];
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DATABASE_URL: undefined, ...opts.env },
  });
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (text: string) => stderr.push(text));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${name} did not report listening in ${timeoutMs} ms: ${stderr.join('')}`));
    }, timeoutMs);
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`${name} ${why}: ${stderr.join('')}`));
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
    async stop(graceMs = 5000) {
      if (!running()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
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
