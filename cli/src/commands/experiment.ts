import type { ExperimentView } from '@edgeship/update-server/admin-client';
import type { Command } from 'commander';
import { adminClient, type ServerOptions } from '../server/admin.ts';
import { CliError, type OutputOptions, print } from './output.ts';
import { parseNumber, withServer } from './server-flags.ts';

interface StartFlags extends ServerOptions, OutputOptions {
  app: string;
  channel: string;
  metric: string;
  minEffect: string;
  share?: string;
  treatment: string[];
  allocation: string;
  floor?: string;
  alpha?: string;
  direction: string;
  sd?: string;
}

/** `edgeship experiment start|show`: releases against production on a primary metric (experiment/experiments.ts). */
export function registerExperiment(program: Command): void {
  const experiment = program
    .command('experiment')
    .description('test a release against production on an outcome or accuracy, with always-valid inference');

  withServer(
    experiment
      .command('start <model> [version]')
      .description(
        'start an experiment: the release (or each --treatment, one arm each) on --share of devices, production on the rest',
      )
      .requiredOption('--app <app>', 'app')
      .requiredOption('--channel <channel>', 'channel')
      .requiredOption('--metric <metric>', 'primary metric: outcome:<name> (its mean or rate) or accuracy')
      .requiredOption(
        '--min-effect <x>',
        'smallest effect worth detecting, in the metric units (0.02 = 2 points)',
      )
      .option(
        '--treatment <version>',
        'a treatment arm (repeat for up to 4; with <version>, it is the first)',
        (v: string, list: string[]) => [...list, v],
        [] as string[],
      )
      .option(
        '--share <percent>',
        'share of devices on each treatment (default: an equal split, 50% for one)',
      )
      .option(
        '--allocation <kind>',
        'fixed, or thompson: shares follow the posterior of the best arm (no winner verdict then)',
        'fixed',
      )
      .option(
        '--floor <percent>',
        'thompson: the least share an arm keeps (default: a fifth of an equal split)',
      )
      .option('--alpha <alpha>', 'false winners at most this share (default 0.05)')
      .option('--direction <d>', 'increase or decrease is better', 'increase')
      .option('--sd <sd>', 'per-install standard deviation of the metric (default: from the last day)'),
  )
    .option('--json', 'print JSON')
    .action(async (model: string, version: string | undefined, flags: StartFlags) => {
      if (flags.direction !== 'increase' && flags.direction !== 'decrease') {
        throw new CliError(`--direction ${flags.direction}: use increase or decrease`);
      }
      if (flags.allocation !== 'fixed' && flags.allocation !== 'thompson') {
        throw new CliError(`--allocation ${flags.allocation}: use fixed or thompson`);
      }
      const treatments = [...(version ? [version] : []), ...flags.treatment];
      if (treatments.length === 0)
        throw new CliError('name the treatment: <version> or --treatment <version>');
      const view = await adminClient(flags).startExperiment({
        app: flags.app,
        channel: flags.channel,
        model,
        ...(treatments.length === 1 ? { release: treatments[0]! } : { treatments }),
        ...(flags.share
          ? { shareBps: Math.round(parseNumber(flags.share, '--share', 0.01, 99.99)! * 100) }
          : {}),
        metric: parseMetric(flags.metric),
        minimumEffect: parseNumber(flags.minEffect, '--min-effect', 1e-9, 1e6)!,
        direction: flags.direction,
        ...(flags.allocation === 'thompson' ? { allocation: 'thompson' as const } : {}),
        ...(flags.floor
          ? { floorBps: Math.round(parseNumber(flags.floor, '--floor', 0.01, 50)! * 100) }
          : {}),
        ...(flags.alpha ? { alpha: parseNumber(flags.alpha, '--alpha', 0.001, 0.2)! } : {}),
        ...(flags.sd ? { sdPerInstall: parseNumber(flags.sd, '--sd', 1e-9, 1e6)! } : {}),
      });
      print(flags, view, () => describe(view));
    });

  withServer(
    experiment
      .command('show [id]')
      .description('one experiment, or every experiment: estimate, effect, verdict, guardrails')
      .option('--model <model>', 'only this model'),
  )
    .option('--json', 'print JSON')
    .action(async (id: string | undefined, flags: ServerOptions & OutputOptions & { model?: string }) => {
      const client = adminClient(flags);
      const views = id ? [await client.experiment(id)] : await client.experiments({ model: flags.model });
      print(flags, id ? views[0] : views, () =>
        views.length ? views.flatMap(describe) : ['no experiments'],
      );
    });
}

function parseMetric(text: string): { kind: 'outcome'; name: string } | { kind: 'accuracy' } {
  if (text === 'accuracy') return { kind: 'accuracy' };
  const m = /^outcome:([a-z0-9][a-z0-9._-]*)$/.exec(text);
  if (!m) throw new CliError(`--metric ${text}: use outcome:<name> or accuracy`);
  return { kind: 'outcome', name: m[1]! };
}

function describe(v: ExperimentView): string[] {
  const r = v.rollout;
  const e = v.spec.estimate;
  const metric = v.spec.metric.kind === 'accuracy' ? 'accuracy' : `outcome ${v.spec.metric.name}`;
  // Several arms: each with its share (they may differ once reallocated).
  const arms = r.arms
    ? `${r.arms.map((a) => a.release).join('+')} vs ${r.control} (${r.arms.map((a) => `${a.shareBps / 100}%`).join('/')}`
    : `${r.release} vs ${r.control} (${r.shareBps / 100}%`;
  const lines = [
    `experiment ${r.id} ${r.app}/${r.channel} ${r.model}@${arms}, ${r.state}): ${metric}, minimum effect ${v.spec.design.minimumEffect}, alpha ${v.spec.design.alpha}`,
    `  estimate: ${e.installsPerArm} installs per arm${e.days === null ? '' : `, about ${e.days.toFixed(1)} days`}`,
    `  verdict: ${v.verdict.decision}${v.verdict.decision === 'winner' ? ` (${v.verdict.winner})` : ''}${v.verdict.decision === 'waiting' ? ` (${v.verdict.reason})` : ''}${v.verdict.decision === 'adaptive' ? ` (thompson allocation, no winner test: P(best) ${v.verdict.probabilities.map((p) => `${p.release} ${p.pBest.toFixed(3)}`).join(', ')})` : ''}`,
  ];
  for (const c of v.verdict.comparisons) {
    lines.push(
      `  ${c.release} − ${c.control}: ${c.effect.toFixed(4)} [${c.interval[0].toFixed(4)}, ${c.interval[1].toFixed(4)}], p ${c.p.toPrecision(2)}, installs ${c.treatment.installs}/${c.controlEstimate.installs}`,
    );
  }
  if (v.guardrails)
    lines.push(
      `  guardrails: ${v.guardrails.decision}${v.guardrails.reasons.length ? ` (${v.guardrails.reasons.join('; ')})` : ''}`,
    );
  return lines;
}
