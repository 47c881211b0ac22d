import { EdgeshipError } from '@edgeship/protocol/errors';
import type { RolloutRecord } from '../../../src/storage/types.ts';
import { askReason } from '../dialog.ts';
import { h, section, table } from '../dom.ts';
import { showError } from '../error-banner.ts';
import { parsePercent, percentFromBps, shortId, time } from '../format.ts';
import type { ViewContext } from './context.ts';

/** Every rollout of the channel, newest first, with the operator's controls on the active ones. */
export function rolloutsView(
  ctx: ViewContext,
  rollouts: RolloutRecord[],
  onHistory: (rollout: RolloutRecord) => void,
): HTMLElement {
  const rows = rollouts.map((r) => {
    const active = r.state === 'active';
    const shareInput = h('input', {
      'data-testid': 'share-input',
      'aria-label': `share of rollout ${shortId(r.id)} in percent`,
      value: (r.shareBps / 100).toString(),
      size: 6,
      inputmode: 'decimal',
      disabled: !active || !ctx.canOperate,
    });
    const setShare = h(
      'button',
      {
        'data-testid': 'share-button',
        disabled: !active || !ctx.canOperate,
        onclick: async () => {
          const bps = parsePercent(shareInput.value);
          if (bps === null) {
            showError(new EdgeshipError('E_VALIDATION', 'the share is a percentage from 0 to 100'));
            return;
          }
          await ctx.act('set share', () => ctx.api.setShare(r.id, bps));
        },
      },
      'Set',
    );
    const promote = h(
      'button',
      {
        'data-testid': 'promote-button',
        disabled: !active || !ctx.canOperate || r.mode === 'shadow',
        title:
          r.mode === 'shadow'
            ? 'a shadow rollout is evaluated, not promoted'
            : `make ${r.release} production`,
        onclick: () => ctx.act('promote', () => ctx.api.promote(r.id)),
      },
      'Promote',
    );
    const halt = h(
      'button',
      {
        'data-testid': 'halt-button',
        class: 'danger',
        disabled: !active || !ctx.canOperate,
        onclick: async () => {
          const reason = await askReason(
            `Halt ${r.model}@${r.release}`,
            'Its share goes to 0 and its devices return to the control on their next update check.',
          );
          if (reason) await ctx.act('halt', () => ctx.api.halt(r.id, reason));
        },
      },
      'Halt',
    );
    return h(
      'tr',
      {
        'data-testid': 'rollout-row',
        'data-rollout-id': r.id,
        'data-state': r.state,
        class: `state-${r.state}`,
      },
      h('td', { title: r.id }, shortId(r.id)),
      h('td', {}, r.model),
      h('td', { 'data-testid': 'rollout-release' }, r.release),
      h('td', {}, r.control ?? 'production'),
      h('td', {}, r.mode),
      h('td', { 'data-testid': 'rollout-state' }, h('span', { class: `badge ${r.state}` }, r.state)),
      h('td', { 'data-testid': 'rollout-share', 'data-share-bps': r.shareBps }, percentFromBps(r.shareBps)),
      h('td', { 'data-testid': 'rollout-reason', class: 'reason' }, r.reason ?? ''),
      h('td', {}, time(r.updatedAt)),
      h(
        'td',
        { class: 'actions' },
        active ? [shareInput, setShare, promote, halt] : [],
        h('button', { 'data-testid': 'history-button', onclick: () => onHistory(r) }, 'History'),
      ),
    );
  });
  return section(
    'Rollouts',
    'rollouts',
    table(
      ['id', 'model', 'release', 'control', 'mode', 'state', 'share', 'reason', 'updated', 'actions'],
      rows,
      'No rollout on this channel yet.',
    ),
  );
}
