import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface Child<T> {
  info: T;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Spawns `node [args]` and waits for the first stdout line that parses as JSON with `url`
 * (servers print pino logs too). stderr is passed through for diagnosis.
 */
export async function spawnServer<T extends { url: string }>(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<Child<T>> {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const info = await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${args.join(' ')} did not start in ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code} before listening`)));
    lines.on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as T;
        if (typeof parsed.url === 'string') {
          clearTimeout(timer);
          resolve(parsed);
        }
      } catch {
        // a log line
      }
    });
  });
  child.removeAllListeners('exit');
  child.stdout!.resume();
  return {
    info,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
