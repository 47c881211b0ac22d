import type { ChannelAlerts } from '@edgeship/update-server/admin-client';
import type { Command } from 'commander';
import { adminClient, type ServerOptions } from '../server/admin.ts';
import { type OutputOptions, print } from './output.ts';
import { parseNumber, withServer } from './server-flags.ts';

interface ChannelFlags extends ServerOptions, OutputOptions {
  app: string;
  channel: string;
}

interface SetFlags extends ChannelFlags {
  errorRate?: string;
  p95LatencyMs?: string;
  inputErrorShare?: string;
  driftPsi?: string;
  accuracyDrop?: string;
  windowMinutes?: string;
  minSamples?: string;
  retrainAfterMinutes?: string;
}

/** `edgeship alerts show|set`: a channel's alert thresholds on its production releases. */
export function registerAlerts(program: Command): void {
  const alerts = program
    .command('alerts')
    .description(
      "a channel's alerts on its production releases (webhooks alert.fired, alert.resolved, retrain.suggested)",
    );
  const channelOptions = (c: Command) =>
    withServer(
      c.requiredOption('--app <app>', 'app').requiredOption('--channel <channel>', 'channel'),
    ).option('--json', 'print JSON');

  channelOptions(
    alerts.command('show').description('thresholds and alert episodes (open and last resolved)'),
  ).action(async (flags: ChannelFlags) => {
    const r = await adminClient(flags).channelAlerts(flags.app, flags.channel);
    print(flags, r, () => describe(r));
  });

  channelOptions(
    alerts
      .command('set')
      .description("set the channel's thresholds (operator); a rule left out is off")
      .option('--error-rate <share>', 'share of calls that fail (0-1)')
      .option('--p95-latency-ms <ms>', 'p95 inference latency')
      .option('--input-error-share <share>', 'share of calls refused as E_INPUT (0-1)')
      .option('--drift-psi <psi>', 'PSI of the most drifted monitored feature')
      .option(
        '--accuracy-drop <share>',
        "live accuracy below the release's published accuracy by more than this",
      )
      .option('--window-minutes <n>', 'trailing window judged (default 15)')
      .option('--min-samples <n>', 'observations before a rule is judged (default 500)')
      .option('--retrain-after-minutes <n>', 'drift firing this long suggests retraining (default 360)'),
  ).action(async (flags: SetFlags) => {
    const n = (text: string | undefined, flag: string, max?: number) => parseNumber(text, flag, 0, max);
    const thresholds = Object.fromEntries(
      Object.entries({
        errorRate: n(flags.errorRate, '--error-rate', 1),
        p95LatencyMs: n(flags.p95LatencyMs, '--p95-latency-ms'),
        inputErrorShare: n(flags.inputErrorShare, '--input-error-share', 1),
        driftPsi: n(flags.driftPsi, '--drift-psi'),
        accuracyDrop: n(flags.accuracyDrop, '--accuracy-drop', 1),
      }).filter(([, v]) => v !== undefined),
    );
    const rest = Object.fromEntries(
      Object.entries({
        windowMinutes: n(flags.windowMinutes, '--window-minutes'),
        minSamples: n(flags.minSamples, '--min-samples'),
        retrainAfterMinutes: n(flags.retrainAfterMinutes, '--retrain-after-minutes'),
      }).filter(([, v]) => v !== undefined),
    );
    const r = await adminClient(flags).setChannelAlerts(flags.app, flags.channel, { thresholds, ...rest });
    print(flags, r, () => describe(r));
  });
}

function describe(r: ChannelAlerts): string[] {
  if (!r.config) return [`${r.app}/${r.channel}: no alerts configured`];
  const t = r.config.thresholds;
  const rules = [
    t.errorRate !== undefined && `error rate > ${t.errorRate}`,
    t.p95LatencyMs !== undefined && `p95 > ${t.p95LatencyMs} ms`,
    t.inputErrorShare !== undefined && `E_INPUT share > ${t.inputErrorShare}`,
    t.driftPsi !== undefined && `drift PSI > ${t.driftPsi}`,
    t.accuracyDrop !== undefined && `accuracy drop > ${t.accuracyDrop}`,
  ].filter(Boolean);
  return [
    `${r.app}/${r.channel}: ${rules.length > 0 ? rules.join(', ') : 'no thresholds'} over ${r.config.windowMinutes} min ` +
      `(from ${r.config.minSamples} samples; retraining suggested after ${r.config.retrainAfterMinutes} min of drift)`,
    ...r.episodes.map(
      (e) =>
        `  ${e.state === 'firing' ? 'FIRING' : 'resolved'} ${e.rule} on ${e.model}@${e.version} since ${e.firedAt}` +
        (e.resolvedAt ? `, resolved ${e.resolvedAt}` : ''),
    ),
  ];
}
