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
