import { Command, CommanderError } from 'commander';
import { attributeOf, type CliOptions, commanderOption, readSwitchEnv, SERVER_OPTIONS } from './options.ts';

export type ParsedCommand =
  | { run: true; options: CliOptions }
  /** --help or --version: printed, nothing to run. */
  | { run: false };

export interface ParseOptions {
  version: string;
  env?: NodeJS.ProcessEnv;
  /** Where --help and --version print (default stdout). */
  write?: (text: string) => void;
}

/**
 * `edgeship-server`'s command line: every flag of SERVER_OPTIONS, each with its environment
 * variable (a flag wins over the environment, which wins over the default). Bad values are
 * refused with the flag's name, before anything is opened.
 */
export function parseServerCommand(argv: readonly string[], opts: ParseOptions): ParsedCommand {
  const env = opts.env ?? process.env;
  const write = opts.write ?? ((text: string) => process.stdout.write(text));
  const command = new Command('edgeship-server')
    .description(
      "Edgeship's update server: model registry, signed manifests, chunks, telemetry, canary analysis.\n" +
        'Every flag can also be set by the environment variable named after it.',
    )
    .version(opts.version, '-v, --version')
    .helpOption('-h, --help')
    .exitOverride()
    .configureOutput({ writeOut: write, writeErr: () => {} })
    .allowExcessArguments(false);
  for (const spec of SERVER_OPTIONS) command.addOption(commanderOption(spec));
  withEnv(env, () => {
    try {
      command.parse(argv, { from: 'user' });
    } catch (error) {
      if (error instanceof CommanderError) {
        if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return;
        // commander's message starts with "error: "; the bin adds its own prefix.
        throw new Error(error.message.replace(/^error: /, ''));
      }
      throw error;
    }
  });
  if (argv.some((a) => a === '-h' || a === '--help' || a === '-v' || a === '--version'))
    return { run: false };

  const values = command.opts<Record<string, unknown>>();
  const options: CliOptions = { dataDir: '.data', dashboard: true };
  for (const spec of SERVER_OPTIONS) {
    let value = values[attributeOf(spec)];
    if (!spec.value) {
      // A switch: the flag, else its env variable; `--no-x` switches store `x: false`.
      const negated = spec.flag.startsWith('no-');
      const given = command.getOptionValueSource(attributeOf(spec)) === 'cli';
      const fromEnv = readSwitchEnv(spec, env);
      if (!given && fromEnv === undefined) continue;
      const on = given ? (negated ? value === false : value === true) : fromEnv === true;
      value = negated ? !on : on;
    }
    if (value === undefined) continue;
    spec.set(options, value as never);
  }
  return { run: true, options };
}

/** Commander reads env variables from process.env; tests hand in their own. */
function withEnv(env: NodeJS.ProcessEnv, fn: () => void): void {
  if (env === process.env) {
    fn();
    return;
  }
  const saved = process.env;
  process.env = env;
  try {
    fn();
  } finally {
    process.env = saved;
  }
}
