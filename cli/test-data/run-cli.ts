import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SOURCE_CONDITION_ARG } from '../../test/support/node-args.ts';

const BIN = fileURLToPath(new URL('../bin/edgeship.mjs', import.meta.url));

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real binary, as a script would; the environment is replaced, not merged, for the EDGESHIP_ variables. */
export function edgeship(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EDGESHIP_')));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SOURCE_CONDITION_ARG, BIN, ...args],
      { cwd, env: { ...base, ...env } },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}
