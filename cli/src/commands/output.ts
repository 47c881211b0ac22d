import { EdgeshipError } from '@edgeship/protocol';

/** Exit codes scripts can rely on (documented in cli/README.md). */
export const EXIT = {
  ok: 0,
  failed: 1, // the operation was refused: verification, gate, conflict
  usage: 2, // bad arguments or unreadable input files
  unreachable: 3, // the server could not be reached
  auth: 4, // missing, wrong or expired token, or the wrong role
} as const;

/** An error the CLI reports as one line and a chosen exit code. */
export class CliError extends Error {
  /** Printed beside `error` in the --json document (a failed gate's validation report). */
  details: Record<string, unknown> = {};

  constructor(
    message: string,
    readonly exitCode: number,
    readonly code = 'E_CLI',
  ) {
    super(message);
    this.name = 'CliError';
  }
}

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
  const details = error instanceof CliError ? error.details : {};
  const document = { ok: false, ...details, error: { code: failure.code, message: failure.message } };
  process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
}

/** Maps any error to one line on stderr and an exit code. */
export function exitCodeFor(error: unknown): { code: string; message: string; exitCode: number } {
  if (error instanceof CliError)
    return { code: error.code, message: error.message, exitCode: error.exitCode };
  const status = (error as { status?: unknown }).status;
  const code = (error as { code?: unknown }).code;
  if (typeof status === 'number' && (status === 401 || status === 403)) {
    return { code: String(code ?? 'E_AUTH'), message: (error as Error).message, exitCode: EXIT.auth };
  }
  if (code === 'E_NETWORK' || (error instanceof TypeError && /fetch failed/i.test(error.message))) {
    return { code: 'E_NETWORK', message: (error as Error).message, exitCode: EXIT.unreachable };
  }
  if (error instanceof EdgeshipError)
    return { code: error.code, message: error.message, exitCode: EXIT.failed };
  if (typeof code === 'string') return { code, message: (error as Error).message, exitCode: EXIT.failed };
  return {
    code: 'E_INTERNAL',
    message: error instanceof Error ? error.message : String(error),
    exitCode: EXIT.failed,
  };
}
