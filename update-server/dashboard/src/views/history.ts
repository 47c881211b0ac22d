import type { AuditEntry } from '../../../src/storage/types.ts';
import { h, section, table } from '../dom.ts';
import { time } from '../format.ts';

/** The rollout an audit entry is about: `rolloutId` on changes, the whole rollout on creation. */
export function rolloutIdOf(entry: AuditEntry): string | null {
  const d = entry.details;
  if (typeof d.rolloutId === 'string') return d.rolloutId;
  const rollout = d.rollout as { id?: unknown } | undefined;
  return typeof rollout?.id === 'string' ? rollout.id : null;
}

/** A one-line reading of an entry's details for the common actions; the raw JSON is one click away. */
export function describeEntry(entry: AuditEntry): string {
  const d = entry.details as Record<string, unknown>;
  const pct = (bps: unknown) => (typeof bps === 'number' ? `${bps / 100}%` : '?');
  switch (entry.action) {
    case 'release.publish':
      return `published ${entry.model}@${String(d.version ?? (d.release as { version?: string })?.version ?? '')}`;
    case 'rollout.create': {
      const r = d.rollout as { release?: string; shareBps?: number; mode?: string } | undefined;
      return `started ${r?.mode ?? ''} rollout of ${r?.release ?? '?'} at ${pct(r?.shareBps)}`;
    }
    case 'rollout.share':
      return `share ${pct(d.from)} → ${pct(d.to)}`;
    case 'rollout.promote':
      return `promoted ${String(d.release)} (was ${String(d.previousProduction ?? 'none')})`;
    case 'rollout.halt':
      return `halted ${String(d.release)} at ${pct(d.fromShareBps)}: ${String(d.reason)}`;
    case 'release.promote':
      return `production ${String(d.previousProduction ?? 'none')} → ${String(d.release)}`;
    case 'release.rollback':
      return `rolled back ${String(d.from)} → ${String(d.to)}: ${String(d.reason)}`;
    default:
      return '';
  }
}

export function historyView(
  entries: AuditEntry[],
  rolloutId: string | null,
  onClear: () => void,
): HTMLElement {
  const shown = rolloutId ? entries.filter((e) => rolloutIdOf(e) === rolloutId) : entries;
  const rows = shown.map((e) =>
    h(
      'tr',
      { 'data-testid': 'audit-row', 'data-action': e.action },
      h('td', {}, time(e.at)),
      h('td', {}, e.actor),
      h('td', {}, e.action),
      h('td', {}, e.model ?? ''),
      h(
        'td',
        {},
        describeEntry(e),
        h('details', {}, h('summary', {}, 'details'), h('pre', {}, JSON.stringify(e.details, null, 2))),
      ),
    ),
  );
  return section(
    rolloutId ? `History of rollout ${rolloutId.slice(0, 8)}` : 'History (audit trail)',
    'history',
    rolloutId ? h('button', { onclick: onClear }, 'Show the whole channel') : null,
    table(['at', 'actor', 'action', 'model', 'what'], rows, 'Nothing recorded yet.'),
  );
}
