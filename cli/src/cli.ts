import { Command } from 'commander';
import { registerKeygen } from './commands/keygen.ts';
import { exitCodeFor } from './commands/output.ts';
import { registerPublish } from './commands/publish.ts';
import { registerRollout } from './commands/rollout.ts';
import { registerStatus } from './commands/status.ts';
import { registerToken } from './commands/token.ts';
import { registerVerify } from './commands/verify.ts';

/** Builds the `edgeship` program; each command lives in commands/<name>.ts. */
export function buildProgram(): Command {
  const program = new Command('edgeship')
    .description('Publish, stage and verify models for Edgeship devices')
    .version('0.1.0')
    .showHelpAfterError()
    // Program options only before the command: `publish --version 1.2.0` is the release's version.
    .enablePositionalOptions()
    .exitOverride();
  registerKeygen(program);
  registerVerify(program);
  registerPublish(program);
  registerRollout(program);
  registerStatus(program);
  registerToken(program);
  return program;
}

/** Runs the CLI; resolves to the exit code so tests can call it in-process. */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    // commander has already printed its own usage errors and help.
    const commanderCode = (error as { code?: string }).code;
    if (commanderCode?.startsWith('commander.')) {
      return commanderCode === 'commander.helpDisplayed' || commanderCode === 'commander.version' ? 0 : 2;
    }
    const { code, message, exitCode } = exitCodeFor(error);
    process.stderr.write(`edgeship: ${code}: ${message.split('\n')[0]}\n`);
    return exitCode;
  }
}
