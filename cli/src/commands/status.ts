import type { Command } from 'commander';
import { adminClient, type ServerOptions } from '../server/admin.ts';
import { type OutputOptions, print } from './output.ts';
import { withServer } from './server-flags.ts';

interface StatusFlags extends ServerOptions, OutputOptions {
  app?: string;
  channel?: string;
  model?: string;
}

/**
 * Releases, rollouts and channel state. Fleet health is not shown: the update server has no admin
 * endpoint for aggregated telemetry yet.
 */
export function registerStatus(program: Command): void {
  withServer(
    program
      .command('status')
      .description('releases, rollouts and channel state on the update server')
      .option('--app <app>', 'only this app (with --channel: its channel state too)')
      .option('--channel <channel>', 'only this channel')
      .option('--model <model>', 'only this model'),
  )
    .option('--json', 'print JSON')
    .action(async (flags: StatusFlags) => {
      const client = adminClient(flags);
      const [{ releases }, { rollouts }, channels] = await Promise.all([
        client.listReleases(flags.model),
        client.listRollouts({ app: flags.app, channel: flags.channel, model: flags.model }),
        client.channels(),
      ]);
      const selected = channels.channels.filter(
        (c) => (!flags.app || c.app === flags.app) && (!flags.channel || c.channel === flags.channel),
      );
      const states = await Promise.all(selected.map((c) => client.channel(c.app, c.channel)));
      const value = { releases, rollouts, channels: states, fleetHealth: null };
      print(flags, value, () => [
        `releases (${releases.length}):`,
        ...releases.map((r) => `  ${r.model}@${r.version} ${r.format} ${r.stage} ${r.totalBytes} bytes`),
        `rollouts (${rollouts.length}):`,
        ...rollouts.map(
          (r) =>
            `  ${r.id} ${r.app}/${r.channel} ${r.model}@${r.release} ${r.state} ${r.shareBps / 100}% ${r.mode}${r.reason ? ` (${r.reason})` : ''}`,
        ),
        `channels (${states.length}):`,
        ...states.map(
          (c) => `  ${c.app}/${c.channel} manifest v${c.manifestVersion ?? '-'}: ${describeModels(c.models)}`,
        ),
        'fleet health: not available (the server has no telemetry summary endpoint)',
      ]);
    });
}

function describeModels(models: unknown[]): string {
  return (
    (
      models as Array<{
        model: string;
        production: string | null;
        rollout: { release: string; shareBps: number } | null;
      }>
    )
      .map(
        (m) =>
          `${m.model} production ${m.production ?? '-'}${m.rollout ? `, rollout ${m.rollout.release} at ${m.rollout.shareBps / 100}%` : ''}`,
      )
      .join('; ') || 'no models'
  );
}
