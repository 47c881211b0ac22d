import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sileroPath } from '../../test/support/models.ts';
import { SOURCE_CONDITION_ARG } from '../../test/support/node-args.ts';

const BIN = fileURLToPath(new URL('../bin/edgeship.mjs', import.meta.url));

/** This folder: the calibration WAVs, and the contracts below it. */
export const TEST_DATA = fileURLToPath(new URL('./', import.meta.url));
/** The Silero VAD's tensor contract. */
export const SILERO_CONTRACT = fileURLToPath(new URL('./contracts/silero.json', import.meta.url));

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

/**
 * `edgeship publish` of the real Silero VAD as vad@`version` under its contract, signed with the
 * publisher.key.json the test wrote to its folder; `extra` flags after.
 */
export function publishSileroArgs(version: string, ...extra: string[]): string[] {
  return [
    'publish',
    sileroPath(),
    '--name',
    'vad',
    '--version',
    version,
    '--contract',
    SILERO_CONTRACT,
    '--publisher-key',
    'publisher.key.json',
    ...extra,
  ];
}
