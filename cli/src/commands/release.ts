import { governance } from '@edgeship/update-server/admin-client';
import type { Command } from 'commander';
import { adminClient, type ServerOptions } from '../server/admin.ts';
import type { OutputOptions } from './output.ts';
import { print } from './output.ts';
import { withServer } from './server-flags.ts';

type Flags = ServerOptions & OutputOptions;
type ChannelFlags = Flags & { app: string; channel: string };

/** `edgeship release show|approve` and `edgeship policy show|set`: the registry's governance. */
export function registerRelease(program: Command): void {
  const release = program.command('release').description('a release: stage, model card, lineage, approvals');

  withServer(release.command('show <model> <version>').description('stage, model card, lineage, approvals'))
    .option('--json', 'print JSON')
    .action(async (model: string, version: string, flags: Flags) => {
      const client = adminClient(flags);
      const [record, { approvals }] = await Promise.all([
        client.getRelease(model, version),
        governance(client).approvals(model, version),
      ]);
      const { modelCard: card, lineage } = record.signed.signed;
      const view = { ...record, card: card ?? null, selfReportedLineage: lineage ?? null, approvals };
      print(flags, view, () => [
        `${model}@${version}: ${record.stage}, published by ${record.createdBy} at ${record.createdAt}`,
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
  const describe = (p: { requireApproval: boolean; approverNotPublisher: boolean }) =>
    !p.requireApproval
      ? 'no approval required'
      : `approval required${p.approverNotPublisher ? ', by someone other than the publisher' : ''}`;

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
      .option('--four-eyes', 'the approver may not be the publisher (implies --require-approval)'),
  ).action(async (flags: ChannelFlags & { requireApproval?: boolean; fourEyes?: boolean }) => {
    const fourEyes = flags.fourEyes === true;
    const r = await governance(adminClient(flags)).setPolicy(flags.app, flags.channel, {
      requireApproval: fourEyes || flags.requireApproval === true,
      approverNotPublisher: fourEyes,
    });
    print(flags, r, () => [`${flags.app}/${flags.channel}: ${describe(r.policy)}`]);
  });
}
