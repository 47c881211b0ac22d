import { NotFoundError } from '@edgeship/protocol';
import type { RolloutSchedule } from '@edgeship/update-server/admin-client';
import type { Command } from 'commander';
import { adminClient, type ServerOptions } from '../server/admin.ts';
import { CliError, type OutputOptions, print } from './output.ts';
import { parseNumber, withServer } from './server-flags.ts';

interface ChannelFlags extends ServerOptions, OutputOptions {
  app: string;
  channel: string;
}

/** Adds the flags every rollout subcommand takes. */
function channelCommand(parent: Command, spec: string, description: string): Command {
  return withServer(
    parent
      .command(spec)
      .description(description)
      .requiredOption('--app <app>', 'app')
      .requiredOption('--channel <channel>', 'channel'),
  ).option('--json', 'print JSON');
}

export function registerRollout(program: Command): void {
  const rollout = program
    .command('rollout')
    .description('stage a release to a share of devices, promote, halt, roll back');

  channelCommand(
    rollout,
    'start <model> <version> [percent]',
    'start a rollout of a registered release (percent: the first stage with --schedule)',
  )
    .option('--mode <mode>', 'canary or shadow', 'canary')
    .option('--control <version>', 'release the rollout is compared against (default: production)')
    .option('--schedule <percents>', 'stages that widen themselves on healthy verdicts, e.g. 1,10,50,100')
    .option('--min-stage-minutes <n>', 'with --schedule: least time per stage', '60')
    .option('--min-samples <n>', 'with --schedule: least canary inferences per stage', '1000')
    .option(
      '--segment-min-share <percent>',
      'with --schedule: hold a stage while a segment with this share of installs has no verdict (0: off; server default 5)',
    )
    .option(
      '--segment-max-wait-minutes <n>',
      'with --schedule: widen anyway after holding this long for segments (server default 3 x --min-stage-minutes)',
    )
    .action(
      async (
        model: string,
        version: string,
        percent: string | undefined,
        flags: ChannelFlags & ScheduleFlags & { mode: string; control?: string },
      ) => {
        if (flags.mode !== 'canary' && flags.mode !== 'shadow')
          throw new CliError(`--mode ${flags.mode}: use canary or shadow`);
        const stages = flags.schedule === undefined ? null : flags.schedule.split(',').map((p) => toBps(p));
        if (stages && flags.mode !== 'canary') throw new CliError('--schedule needs --mode canary');
        if (percent === undefined && !stages) throw new CliError('give a percent, or --schedule');
        const shareBps = percent === undefined ? stages![0]! : toBps(percent);
        const client = adminClient(flags);
        const r = await client.createRollout({
          app: flags.app,
          channel: flags.channel,
          model,
          release: version,
          shareBps,
          mode: flags.mode,
          ...(flags.control ? { control: flags.control } : {}),
        });
        const s = stages
          ? await client.scheduleRollout(r.id, {
              stagesBps: stages,
              minStageMinutes: parseNumber(flags.minStageMinutes, '--min-stage-minutes', 0, 100_000)!,
              minSamples: parseNumber(flags.minSamples, '--min-samples', 0)!,
              ...(flags.segmentMinShare === undefined
                ? {}
                : {
                    segmentMinShare: parseNumber(flags.segmentMinShare, '--segment-min-share', 0, 100)! / 100,
                  }),
              ...(flags.segmentMaxWaitMinutes === undefined
                ? {}
                : {
                    segmentMaxWaitMinutes: parseNumber(
                      flags.segmentMaxWaitMinutes,
                      '--segment-max-wait-minutes',
                      0,
                    )!,
                  }),
            })
          : null;
        print(flags, s ? { ...r, schedule: s } : r, () => [
          `rollout ${r.id}: ${model}@${version} to ${r.shareBps / 100}% of ${flags.app}/${flags.channel} (${r.mode})`,
          ...(s ? [describeSchedule(s)] : []),
        ]);
      },
    );

  channelCommand(
    rollout,
    'schedule <model>',
    "the running rollout's schedule: stages, where it is, why it stopped",
  ).action(async (model: string, flags: ChannelFlags) => {
    const client = adminClient(flags);
    const s = await client.rolloutSchedule((await activeRollout(client, flags, model)).id);
    print(flags, s, () => [describeSchedule(s)]);
  });

  channelCommand(rollout, 'set <model> <percent>', "change the running rollout's share of devices").action(
    async (model: string, percent: string, flags: ChannelFlags) => {
      const shareBps = toBps(percent);
      const client = adminClient(flags);
      const r = await client.setShare((await activeRollout(client, flags, model)).id, shareBps);
      print(flags, r, () => [`rollout ${r.id}: ${model}@${r.release} now at ${r.shareBps / 100}%`]);
    },
  );

  channelCommand(rollout, 'promote <model>', 'make the running rollout (or --release) production')
    .option('--release <version>', 'promote this release directly, with no rollout')
    .action(async (model: string, flags: ChannelFlags & { release?: string }) => {
      const client = adminClient(flags);
      if (flags.release) {
        const r = await client.promoteRelease(flags.app, flags.channel, model, flags.release);
        print(flags, r, () => [`${model}@${r.production} is production on ${flags.app}/${flags.channel}`]);
        return;
      }
      const r = await client.promote((await activeRollout(client, flags, model)).id);
      print(flags, r, () => [
        `promoted ${model}@${r.release} to production on ${flags.app}/${flags.channel}`,
      ]);
    });

  channelCommand(rollout, 'halt <model>', 'stop the running rollout: devices in it fall back to production')
    .requiredOption('--reason <text>', 'why (kept in the audit log)')
    .action(async (model: string, flags: ChannelFlags & { reason: string }) => {
      const client = adminClient(flags);
      const r = await client.halt((await activeRollout(client, flags, model)).id, flags.reason);
      print(flags, r, () => [`halted rollout ${r.id} of ${model}@${r.release}: ${flags.reason}`]);
    });

  channelCommand(rollout, 'rollback <model>', 'point production back at the release it replaced')
    .requiredOption('--reason <text>', 'why (kept in the audit log)')
    .action(async (model: string, flags: ChannelFlags & { reason: string }) => {
      const r = await adminClient(flags).rollback(flags.app, flags.channel, model, flags.reason);
      print(flags, r, () => [
        `${model} production on ${flags.app}/${flags.channel} is back at ${r.production}`,
      ]);
    });
}

interface ScheduleFlags {
  schedule?: string;
  minStageMinutes: string;
  minSamples: string;
  segmentMinShare?: string;
  segmentMaxWaitMinutes?: string;
}

function describeSchedule(s: RolloutSchedule): string {
  const stages = s.stages
    .map((bps, i) =>
      i !== s.stage
        ? `${bps / 100}%`
        : s.fillBps === null
          ? `[${bps / 100}%]`
          : `${bps / 100}% [${s.fillBps / 100}%, filling segments]`,
    )
    .join(' -> ');
  const hold =
    s.segmentHold.minShare > 0
      ? `; holds up to ${s.segmentHold.maxWaitMs / 60_000} min for segments of ${s.segmentHold.minShare * 100}% of installs or more without a verdict`
      : '';
  return (
    `schedule ${stages}: ${s.state}${s.note ? ` (${s.note})` : ''}; ` +
    `each stage at least ${s.minStageMs / 60_000} min and ${s.minSamples} canary inferences${hold}`
  );
}

async function activeRollout(client: ReturnType<typeof adminClient>, flags: ChannelFlags, model: string) {
  const { rollouts } = await client.listRollouts({
    app: flags.app,
    channel: flags.channel,
    model,
    state: 'active',
  });
  const active = rollouts.find((r) => r.state === 'active');
  if (!active) {
    throw new NotFoundError(`no running rollout of ${model} on ${flags.app}/${flags.channel}`);
  }
  return active;
}

function toBps(percent: string): number {
  return Math.round(parseNumber(percent, 'percent', 0, 100)! * 100);
}
