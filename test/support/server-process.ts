import { type ChildProcess, spawn } from 'node:child_process';
import { basename, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { SOURCE_CONDITION_ARG } from './node-args.ts';

/** The real `edgeship-server` bin of this checkout (it runs the TypeScript sources). */
export const SERVER_BIN = resolve(import.meta.dirname, '../../update-server/bin/edgeship-server.mjs');

/** The line a server prints once it listens; a script may add fields (a pid, a token, …). */
export interface ListeningLine {
  event: 'listening';
  url: string;
}

export interface ServerProcess<T extends ListeningLine = ListeningLine> {
  url: string;
  /** The whole listening line, with whatever else the script printed in it. */
  info: T;
  child: ChildProcess;
  /** Everything the process wrote to stderr so far (for failure messages). */
  stderr: string[];
  /** SIGTERM, then SIGKILL after `graceMs` (default: the spawn option's); resolves once it exited. */
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
  /** How long stop() waits after SIGTERM before SIGKILL (default 5 s). */
  graceMs?: number;
  /** Also pass stderr through to this process's (benches, for diagnosis while they run). */
  echoStderr?: boolean;
}

/** How the benches spawn: their servers may take a minute to start on a loaded machine, and 10 s to stop. */
export const BENCH_SPAWN = { timeoutMs: 60_000, echoStderr: true, graceMs: 10_000 } as const;

/**
 * The one spawner of real server processes for tests, the fleet simulator and the benches: runs
 * `edgeship-server` (or `script`) with `args` (add `--port 0`) and waits for its
 * `{"event":"listening","url"}` line (`T`: what else `script` prints in it). DATABASE_URL is
 * cleared from the environment, so only the flags decide the database.
 */
export async function spawnServer<T extends ListeningLine = ListeningLine>(
  args: readonly string[],
  opts: SpawnOptions = {},
): Promise<ServerProcess<T>> {
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
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    stderr.push(text);
    if (opts.echoStderr) process.stderr.write(text);
  });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const info = await new Promise<T>((resolveInfo, reject) => {
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
      let event: Partial<T> | null = null;
      try {
        event = JSON.parse(line);
      } catch {
        return;
      }
      if (event?.event === 'listening' && typeof event.url === 'string') {
        clearTimeout(timer);
        resolveInfo(event as T);
      }
    });
  }).catch(async (error) => {
    child.kill('SIGKILL');
    await exited;
    throw error;
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    url: info.url,
    info,
    child,
    stderr,
    async stop(graceMs = opts.graceMs ?? 5000) {
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
