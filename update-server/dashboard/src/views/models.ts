import type { ChannelState, ReleaseSummary } from '../../../src/admin-client.ts';
import { askReason } from '../dialog.ts';
import { h, section, table } from '../dom.ts';
import { percentFromBps } from '../format.ts';
import type { ViewContext } from './context.ts';

/** Per model of the channel: what production serves, where a rollback goes, the running rollout. */
export function modelsView(ctx: ViewContext, state: ChannelState, releases: ReleaseSummary[]): HTMLElement {
  const rows = state.models.map((m) => {
    const versions = releases.filter((r) => r.model === m.model).map((r) => r.version);
    const pick = h(
      'select',
      { 'data-testid': 'promote-release-select', 'aria-label': `release of ${m.model} to promote` },
      ...versions.map((v) => h('option', { value: v, selected: v === m.production }, v)),
    );
    const rollback = h(
      'button',
      {
        'data-testid': 'rollback-button',
        class: 'danger',
        disabled: !ctx.canOperate || !m.previousProduction,
        title: m.previousProduction
          ? `production goes back to ${m.previousProduction}`
          : 'no earlier release',
        onclick: async () => {
          const reason = await askReason(
            `Roll back ${m.model}`,
            `Production goes from ${m.production} back to ${m.previousProduction}; a running rollout stops.`,
          );
          if (reason) await ctx.act('roll back', () => ctx.api.rollback(m.app, m.channel, m.model, reason));
        },
      },
      'Roll back',
    );
    const promote = h(
      'button',
      {
        'data-testid': 'promote-release-button',
        disabled: !ctx.canOperate || versions.length === 0,
        onclick: () =>
          ctx.act('promote release', () => ctx.api.promoteRelease(m.app, m.channel, m.model, pick.value)),
      },
      'Promote',
    );
    return h(
      'tr',
      { 'data-testid': 'model-row', 'data-model': m.model },
      h('td', {}, m.model),
      h('td', { 'data-testid': 'production' }, m.production ?? '—'),
      h('td', {}, m.previousProduction ?? '—'),
      h(
        'td',
        {},
        m.rollout
          ? `${m.rollout.release} · ${m.rollout.mode} · ${percentFromBps(m.rollout.shareBps)}`
          : 'no rollout',
      ),
      h('td', { class: 'actions' }, pick, promote, rollback),
    );
  });
  return section(
    `Models · manifest v${state.manifestVersion ?? '—'}`,
    'models',
    table(['model', 'production', 'previous', 'rollout', 'actions'], rows, 'No model on this channel yet.'),
  );
}
