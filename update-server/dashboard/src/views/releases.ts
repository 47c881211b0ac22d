import type { ReleaseSummary } from '../../../src/admin-client.ts';
import type { ReleaseRecord } from '../../../src/storage/types.ts';
import { h, section, table } from '../dom.ts';
import { bytes, time } from '../format.ts';

const metricsText = (metrics: Record<string, number>) =>
  Object.entries(metrics)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`)
    .join(', ');

/** The releases of the channel's models, newest first; a click opens lineage and model card. */
export function releasesView(
  releases: ReleaseSummary[],
  selected: string | null,
  onSelect: (release: ReleaseSummary) => void,
): HTMLElement {
  const rows = releases.map((r) => {
    const id = `${r.model}@${r.version}`;
    return h(
      'tr',
      { 'data-testid': 'release-row', 'data-release': id, class: id === selected ? 'selected' : '' },
      h('td', {}, h('button', { class: 'link', onclick: () => onSelect(r) }, id)),
      h('td', {}, r.format),
      h('td', {}, h('span', { class: `badge ${r.stage}` }, r.stage)),
      h('td', {}, bytes(r.totalBytes)),
      h('td', {}, metricsText(r.metrics) || '—'),
      h('td', {}, typeof r.lineage.parent === 'string' ? r.lineage.parent : '—'),
      h('td', {}, `${time(r.createdAt)} by ${r.createdBy}`),
    );
  });
  return section(
    'Releases',
    'releases',
    table(
      ['release', 'format', 'stage', 'size', 'metrics', 'parent', 'published'],
      rows,
      'No release published.',
    ),
  );
}

export function releaseDetailView(detail: ReleaseRecord): HTMLElement {
  const lineage = Object.entries(detail.lineage).map(([k, v]) =>
    h('tr', {}, h('th', {}, k), h('td', {}, typeof v === 'string' ? v : JSON.stringify(v))),
  );
  const files = detail.signed?.signed?.files ?? [];
  return section(
    `${detail.model}@${detail.version}`,
    'release-detail',
    h('h3', {}, 'Lineage'),
    lineage.length > 0
      ? h('table', { class: 'kv' }, h('tbody', {}, lineage))
      : h('p', { class: 'empty' }, 'None recorded.'),
    h('h3', {}, 'Metrics'),
    h('p', {}, metricsText(detail.metrics) || 'None recorded.'),
    h('h3', {}, 'Files'),
    h(
      'ul',
      {},
      ...files.map((f) => h('li', {}, `${f.path} · ${bytes(f.size)} · sha256 ${f.sha256.slice(0, 16)}…`)),
    ),
    h('h3', {}, 'Model card'),
    detail.modelCard
      ? h('pre', { class: 'model-card', 'data-testid': 'model-card' }, detail.modelCard)
      : h('p', { class: 'empty' }, 'No model card.'),
  );
}
