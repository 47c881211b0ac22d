import type { FleetSummary } from '@edgeship/update-server/admin-client';
import type { Command } from 'commander';
import { adminClient, type ServerOptions } from '../server/admin.ts';
import { CliError, type OutputOptions, print } from './output.ts';
import { withServer } from './server-flags.ts';

interface StatusFlags extends ServerOptions, OutputOptions {
  app?: string;
  channel?: string;
  model?: string;
  stuckGrace?: string;
}

/** Releases, rollouts, channel state and, per channel, fleet health from the devices' telemetry. */
export function registerStatus(program: Command): void {
  withServer(
    program
      .command('status')
      .description('releases, rollouts, channel state and fleet health on the update server')
      .option('--app <app>', 'only this app (with --channel: its channel state too)')
      .option('--channel <channel>', 'only this channel')
      .option('--model <model>', 'only this model')
      .option(
        '--stuck-grace <seconds>',
        'a device counts as stuck on an old version this long after its target release was set',
        '3600',
      ),
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
        selected.map((c) =>
          client.fleet({
            app: c.app,
            channel: c.channel,
            model: flags.model,
            grace: grace(flags.stuckGrace),
          }),
        ),
      );
      const value = { releases, rollouts, channels: states, fleetHealth: fleets };
      print(flags, value, () => [
        `releases (${releases.length}):`,
        ...releases.map((r) => `  ${r.model}@${r.version} ${r.format} ${r.stage} ${r.totalBytes} bytes`),
        `rollouts (${rollouts.length}):`,
        ...rollouts.map(
          (r) =>
            `  ${r.id} ${r.app}/${r.channel} ${r.model}@${r.arms ? r.arms.map((a) => a.release).join('+') : r.release} ${r.state} ${r.shareBps / 100}% ${r.mode}${excluded(r.excludedSegments)}${r.reason ? ` (${r.reason})` : ''}`,
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
        'update pipeline (last hour):',
        ...fleets.flatMap((f) =>
          f.versions.filter((v) => v.update).map((v) => `  ${f.app}/${f.channel} ${describePipeline(v)}`),
        ),
        'devices stuck on old versions (latest report older than their bucket should run):',
        ...fleets.flatMap((f) => f.stuck.map((s) => `  ${f.app}/${f.channel} ${describeStuck(s)}`)),
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
  return `${v.model}@${v.version}: ${v.devices} devices${share}, ${v.inferences} inferences, errors ${errors}, p50/p95/p99 ${ms(v.latencyMs.p50)}/${ms(v.latencyMs.p95)}/${ms(v.latencyMs.p99)} ms${drifted.length ? `, drift: ${drifted.join(', ')}` : ''}${describeQuality(v.quality)}`;
}

/** Live accuracy from the app's feedback and each outcome's mean (a rate for 0/1 outcomes). */
export function describeQuality(q: FleetSummary['versions'][number]['quality']): string {
  if (!q) return '';
  const parts: string[] = [];
  if (q.accuracy !== null) parts.push(`accuracy ${(q.accuracy * 100).toFixed(1)}% of ${q.labelled} labelled`);
  for (const [name, o] of Object.entries(q.outcomes)) {
    if (o.mean !== null) parts.push(`${name} ${o.mean.toFixed(3)} over ${o.count}`);
  }
  return parts.length ? `, ${parts.join(', ')}` : '';
}

function grace(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new CliError(`--stuck-grace: a whole number of seconds, not ${value}`);
  return n;
}

function excluded(segments: Array<{ dimension: string; value: string }> | undefined): string {
  if (!segments?.length) return '';
  return `, excluding ${segments.map((s) => `${s.dimension}=${s.value}`).join(', ')}`;
}

/** Downloads, update failures by code, backend fallbacks and persisted storage, for one release. */
function describePipeline(v: FleetSummary['versions'][number]): string {
  const u = v.update!;
  const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
  const counts = (r: Record<string, number>) =>
    Object.entries(r)
      .map(([code, n]) => `${code} ${n}`)
      .join(', ') || 'none';
  const mb = (u.downloadBytes / 1e6).toFixed(1);
  const ms = u.meanDownloadMs === null ? '-' : `${Math.round(u.meanDownloadMs)} ms`;
  return (
    `${v.model}@${v.version}: ${u.downloads} downloads (${mb} MB, mean ${ms}, ${pct(u.resumedShare)} resumed), ` +
    `failures ${pct(u.failureRate)} (${counts(u.failures)}), fallbacks ${counts(u.fallbacks)}, ` +
    `guard fallbacks ${u.guardFallbacks}, storage persisted ${pct(u.persistedShare)}`
  );
}

function describeStuck(s: FleetSummary['stuck'][number]): string {
  const target = `production ${s.production}${s.rollout ? `, canary ${s.rollout.release} at ${s.rollout.shareBps / 100}%` : ''}`;
  const versions = Object.entries(s.byVersion).map(([v, n]) => `${v} ×${n}`);
  const share = s.share === null ? '' : ` (${(s.share * 100).toFixed(1)}%)`;
  return `${s.model} (${target}): ${s.stuck} of ${s.judged} devices${share} after ${s.graceSec} s${versions.length ? `: ${versions.join(', ')}` : ''}`;
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
