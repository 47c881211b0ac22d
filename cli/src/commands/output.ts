import { coded, codeOf, type ErrorCode, exitCodeOf } from '@edgeship/protocol';
import { GateError } from '../validate/gate-error.ts';

/** Bad arguments or unreadable input files: E_CLI, exit 2 (cli/README.md's table). */
export class CliError extends coded('E_CLI') {}

/** No --token and no EDGESHIP_TOKEN: E_AUTH, a usage error (exit 2), not a refused token. */
export class NoTokenError extends coded('E_AUTH') {}

export interface OutputOptions {
  json?: boolean;
}

/** Prints a result: JSON with --json, else the human lines. */
export function print(options: OutputOptions, value: unknown, human: () => string[]): void {
  if (options.json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else for (const line of human()) process.stdout.write(`${line}\n`);
}

/**
 * True when the command line asks for JSON (`--json` before any `--`), read off argv so that a
 * usage error commander throws before any action runs is JSON too.
 */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/** Reports a failure: always one line on stderr; with --json also one document on stdout. */
export function printError(json: boolean, failure: { code: string; message: string }, error?: unknown): void {
  const line = failure.message.split('\n')[0];
  process.stderr.write(`edgeship: ${failure.code}: ${line}\n`);
  if (!json) return;
  // A failed gate's report goes beside `error` in the document.
  const report = error instanceof GateError ? error.report : null;
  const document = {
    ok: false,
    ...(report ? { validation: report } : {}),
    error: { code: failure.code, message: failure.message },
  };
  process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
}

/** Any failure as its code, message and exit code: the code's row of protocol's ERROR_TABLE. */
export function exitCodeFor(error: unknown): { code: ErrorCode; message: string; exitCode: number } {
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  return { code, message, exitCode: exitCodeOf(code) };
}
