import { readFileSync } from 'node:fs';
import { EXIT } from '@edgeship/protocol';
import { Command } from 'commander';
import { registerAlerts } from './commands/alerts.ts';
import { registerExperiment } from './commands/experiment.ts';
import { registerKeygen } from './commands/keygen.ts';
import { exitCodeFor, printError, wantsJson } from './commands/output.ts';
import { registerPublish } from './commands/publish.ts';
import { registerRelease } from './commands/release.ts';
import { registerRollout } from './commands/rollout.ts';
import { registerStatus } from './commands/status.ts';
import { registerToken } from './commands/token.ts';
import { registerVerify } from './commands/verify.ts';

/** The package's version: ../package.json from src/ (a checkout) and from dist/ (installed) alike. */
export const CLI_VERSION: string = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
).version;

/** Builds the `edgeship` program; each command lives in commands/<name>.ts. */
export function buildProgram(): Command {
  const program = new Command('edgeship')
    .description('Publish, stage and verify models for Edgeship devices')
    .version(CLI_VERSION)
    .showHelpAfterError()
    // Program options only before the command: `publish --version 1.2.0` is the release's version.
    .enablePositionalOptions()
    .exitOverride();
  registerKeygen(program);
  registerVerify(program);
  registerPublish(program);
  registerRollout(program);
  registerAlerts(program);
  registerExperiment(program);
  registerRelease(program);
  registerStatus(program);
  registerToken(program);
  return program;
}

/** Runs the CLI; resolves to the exit code so tests can call it in-process. */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  const json = wantsJson(argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    const commanderCode = (error as { code?: string }).code;
    if (commanderCode?.startsWith('commander.')) {
      if (HELP_AND_VERSION.has(commanderCode)) return EXIT.ok;
      // commander has already printed its usage error (and the help) on stderr.
      if (json) {
        const message = (error as Error).message.replace(/^error: /, '');
        process.stdout.write(
          `${JSON.stringify({ ok: false, error: { code: 'E_USAGE', message } }, null, 2)}\n`,
        );
      }
      return EXIT.usage;
    }
    const failure = exitCodeFor(error);
    printError(json, failure, error);
    return failure.exitCode;
  }
}

const HELP_AND_VERSION = new Set(['commander.helpDisplayed', 'commander.version']);
