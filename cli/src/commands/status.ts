import type { FleetSummary } from '@edgeship/update-server/admin-client';
import type { Command } from 'commander';
import { adminClient, type ServerOptions } from '../server/admin.ts';
import { type OutputOptions, print } from './output.ts';
import { withServer } from './server-flags.ts';

interface StatusFlags extends ServerOptions, OutputOptions {
  app?: string;
  channel?: string;
  model?: string;
}

/** Releases, rollouts, channel state and, per channel, fleet health from the devices' telemetry. */
export function registerStatus(program: Command): void {
  withServer(
    program
      .command('status')
      .description('releases, rollouts, channel state and fleet health on the update server')
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
      const fleets = await Promise.all(
        selected.map((c) => client.fleet({ app: c.app, channel: c.channel, model: flags.model })),
      );
      const value = { releases, rollouts, channels: states, fleetHealth: fleets };
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
        'fleet health (last hour):',
        ...fleets.flatMap((f) =>
          f.versions.length === 0
            ? [`  ${f.app}/${f.channel}: no telemetry yet`]
            : f.versions.map((v) => `  ${f.app}/${f.channel} ${describeVersion(v)}`),
        ),
        ...fleets.flatMap((f) => f.rollouts.flatMap(describeVerdicts)),
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

function describeVersion(v: FleetSummary['versions'][number]): string {
  const ms = (x: number | null) => (x === null ? '-' : x.toFixed(2));
  const share = v.share === null ? '' : ` (${(v.share * 100).toFixed(1)}%)`;
  const errors = v.errorRate === null ? '-' : `${(v.errorRate * 100).toFixed(2)}%`;
  const drifted = Object.entries(v.drift)
    .filter(([, d]) => d.drifted)
    .map(([name, d]) => `${name} PSI ${d.psi.toFixed(2)}`);
  return `${v.model}@${v.version}: ${v.devices} devices${share}, ${v.inferences} inferences, errors ${errors}, p50/p95/p99 ${ms(v.latencyMs.p50)}/${ms(v.latencyMs.p95)}/${ms(v.latencyMs.p99)} ms${drifted.length ? `, drift: ${drifted.join(', ')}` : ''}`;
}

/** A rollout's canary verdict with its split by segment, or a shadow rollout's verdict. */
function describeVerdicts(r: FleetSummary['rollouts'][number]): string[] {
  const lines: string[] = [];
  if (r.shadow) {
    lines.push(
      `shadow ${r.id} ${r.model}@${r.release}: ${r.shadow.decision} (${r.shadow.reasons.join('; ')})`,
    );
  }
  if (r.canary) {
    lines.push(
      `canary ${r.id} ${r.model}@${r.release}: ${r.canary.decision}${r.canary.reasons.length ? ` (${r.canary.reasons.join('; ')})` : ''}`,
    );
    // Installs per segment (canary/control), then each segment test that was run.
    for (const [dimension, split] of Object.entries(r.canary.evidence.segments ?? {})) {
      const values = Object.entries(split).map(([value, n]) => `${value} ${n.canary}/${n.control}`);
      if (values.length > 1) lines.push(`  ${dimension}: ${values.join(', ')}`);
    }
    const tests = r.canary.evidence.tests ?? [];
    const regressed = tests.filter((t) => t.regressed);
    lines.push(
      `  ${tests.length} install-level tests (overall and per segment), ${regressed.length} regressed`,
    );
    for (const t of regressed) {
      lines.push(`  regressed: ${t.scope} ${t.criterion} (z ${t.z.toFixed(2)}, p ${t.p.toPrecision(2)})`);
    }
  }
  return lines;
}
