import type { ReleaseGates } from '@edgeship/protocol';
import { governance } from '@edgeship/update-server/admin-client';
import { type Command, Option } from 'commander';
import { adminClient, type ServerOptions } from '../server/admin.ts';
import type { OutputOptions } from './output.ts';
import { print } from './output.ts';
import { withServer } from './server-flags.ts';

type Flags = ServerOptions & OutputOptions;
type ChannelFlags = Flags & { app: string; channel: string };

/** `edgeship release show|approve` and `edgeship policy show|set`: the registry's governance. */
export function registerRelease(program: Command): void {
  const release = program.command('release').description('a release: stage, model card, lineage, approvals');

  withServer(
    release.command('show <model> <version>').description('stage, gates, model card, lineage, approvals'),
  )
    .option('--json', 'print JSON')
    .action(async (model: string, version: string, flags: Flags) => {
      const client = adminClient(flags);
      const [record, { approvals }] = await Promise.all([
        client.getRelease(model, version),
        governance(client).approvals(model, version),
      ]);
      const { modelCard: card, lineage, gates } = record.signed.signed;
      const view = {
        ...record,
        gates: gates ?? null,
        card: card ?? null,
        selfReportedLineage: lineage ?? null,
        approvals,
      };
      print(flags, view, () => [
        `${model}@${version}: ${record.stage}, published by ${record.createdBy} at ${record.createdAt}`,
        ...(gates ? gateLines(gates) : ['gates: none recorded']),
        ...(card?.intendedUse ? [`intended use: ${card.intendedUse}`] : []),
        ...(card?.limitations ? [`limitations: ${card.limitations}`] : []),
        ...(card?.trainingData ? [`training data: ${card.trainingData}`] : []),
        ...(card?.evaluation ?? []).map(
          (e) => `evaluation: ${e.metric} ${e.value}${e.dataset ? ` on ${e.dataset}` : ''}`,
        ),
        ...(card?.segments ?? []).flatMap((s) =>
          s.results.map((e) => `segment ${s.segment}: ${e.metric} ${e.value}`),
        ),
        ...Object.entries(lineage ?? {}).map(
          ([k, v]) => `lineage (self-reported) ${k}: ${JSON.stringify(v)}`,
        ),
        ...approvals.map((a) => `approved for ${a.app}/${a.channel} by ${a.approver} at ${a.approvedAt}`),
      ]);
    });

  withServer(
    release
      .command('approve <model> <version>')
      .description("approve a release for a channel's production (operator)")
      .requiredOption('--app <app>', 'app')
      .requiredOption('--channel <channel>', 'channel'),
  )
    .option('--json', 'print JSON')
    .action(async (model: string, version: string, flags: ChannelFlags) => {
      const a = await governance(adminClient(flags)).approve(flags.app, flags.channel, model, version);
      print(flags, a, () => [`${model}@${version} approved for ${a.app}/${a.channel} by ${a.approver}`]);
    });

  const policy = program.command('policy').description("a channel's promotion policy");
  const channelOptions = (c: Command) =>
    withServer(
      c.requiredOption('--app <app>', 'app').requiredOption('--channel <channel>', 'channel'),
    ).option('--json', 'print JSON');
  const describe = (p: {
    requireApproval: boolean;
    approverNotPublisher: boolean;
    segmentRegression?: 'halt' | 'exclude';
    requireGates?: string[];
  }) =>
    `${
      !p.requireApproval
        ? 'no approval required'
        : `approval required${p.approverNotPublisher ? ', by someone other than the publisher' : ''}`
    }; a canary regressed on segments alone ${p.segmentRegression === 'exclude' ? 'excludes them' : 'is halted'}` +
    (p.requireGates?.length ? `; gates required: ${p.requireGates.join(', ')}` : '');

  channelOptions(policy.command('show').description("show the channel's policy")).action(
    async (flags: ChannelFlags) => {
      const r = await governance(adminClient(flags)).policy(flags.app, flags.channel);
      print(flags, r, () => [`${flags.app}/${flags.channel}: ${describe(r.policy)}`]);
    },
  );
  channelOptions(
    policy
      .command('set')
      .description("set the channel's policy (admin)")
      .option('--require-approval', 'promotion needs an approval for this channel')
      .option('--four-eyes', 'the approver may not be the publisher (implies --require-approval)')
      .addOption(
        new Option(
          '--on-segment-regression <action>',
          'a canary regressed on segments alone: halt the rollout, or exclude those segments',
        )
          .choices(['halt', 'exclude'])
          .default('halt'),
      )
      .option(
        '--require-gates <names>',
        'comma-separated gates the signed release must record to be promoted or widened (e.g. accuracy-vs-production)',
      ),
  ).action(
    async (
      flags: ChannelFlags & {
        requireApproval?: boolean;
        fourEyes?: boolean;
        onSegmentRegression: 'halt' | 'exclude';
        requireGates?: string;
      },
    ) => {
      const fourEyes = flags.fourEyes === true;
      const requireGates = (flags.requireGates ?? '')
        .split(',')
        .map((g) => g.trim())
        .filter(Boolean);
      const r = await governance(adminClient(flags)).setPolicy(flags.app, flags.channel, {
        requireApproval: fourEyes || flags.requireApproval === true,
        approverNotPublisher: fourEyes,
        segmentRegression: flags.onSegmentRegression,
        ...(requireGates.length > 0 ? { requireGates } : {}),
      });
      print(flags, r, () => [`${flags.app}/${flags.channel}: ${describe(r.policy)}`]);
    },
  );
}

/** The gates a signed release records: what ran, its number and limit, on what data, against what. */
function gateLines(gates: ReleaseGates): string[] {
  const against = gates.against
    ? ` against ${gates.against.app}/${gates.against.channel} production ${gates.against.version ?? '(none)'}`
    : '';
  return [
    `gates (signed): ${gates.results.length} passed on ${gates.frames} frames of data ${gates.dataset.slice(0, 12)}…${against}`,
    ...gates.results.map(
      (g) =>
        `  gate ${g.name}${g.value === null ? '' : ` ${g.value}`}${g.limit === null ? '' : ` (limit ${g.limit})`}`,
    ),
  ];
}
