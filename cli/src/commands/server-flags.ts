import type { Command } from 'commander';
import { CliError } from './output.ts';

/** --server and --token, shared by every command that talks to the update server. */
export function withServer(command: Command): Command {
  return command
    .option('--server <url>', 'update server URL (default: $EDGESHIP_SERVER)')
    .option('--token <token>', 'admin API bearer token (default: $EDGESHIP_TOKEN)');
}

export function parseNumber(
  text: string | undefined,
  flag: string,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new CliError(`${flag} must be a number from ${min} to ${max}, got "${text}"`);
  }
  return n;
}
