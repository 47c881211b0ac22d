import { NotFoundError } from '@edgeship/protocol';
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

  channelCommand(rollout, 'start <model> <version> <percent>', 'start a rollout of a registered release')
    .option('--mode <mode>', 'canary or shadow', 'canary')
    .option('--control <version>', 'release the rollout is compared against (default: production)')
    .action(
      async (
        model: string,
        version: string,
        percent: string,
        flags: ChannelFlags & { mode: string; control?: string },
      ) => {
        if (flags.mode !== 'canary' && flags.mode !== 'shadow')
          throw new CliError(`--mode ${flags.mode}: use canary or shadow`);
        const r = await adminClient(flags).createRollout({
          app: flags.app,
          channel: flags.channel,
          model,
          release: version,
          shareBps: toBps(percent),
          mode: flags.mode,
          ...(flags.control ? { control: flags.control } : {}),
        });
        print(flags, r, () => [
          `rollout ${r.id}: ${model}@${version} to ${r.shareBps / 100}% of ${flags.app}/${flags.channel} (${r.mode})`,
        ]);
      },
    );

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
