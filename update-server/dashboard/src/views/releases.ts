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
    h('h3', {}, 'Gates (signed: what was checked before publishing)'),
    signedGates(detail),
    h('h3', {}, 'Model card (signed)'),
    structuredCard(detail),
    h('h3', {}, 'Lineage (signed, self-reported by the publisher)'),
    signedLineage(detail),
    h('h3', {}, 'Model card notes'),
    detail.modelCard
      ? h('pre', { class: 'model-card', 'data-testid': 'model-card' }, detail.modelCard)
      : h('p', { class: 'empty' }, 'No model card.'),
  );
}

const kv = (pairs: Array<[string, string]>) =>
  h(
    'table',
    { class: 'kv' },
    h('tbody', {}, ...pairs.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v)))),
  );

const resultText = (r: { metric: string; value: number; dataset?: string }) =>
  `${r.metric} ${r.value}${r.dataset ? ` (${r.dataset})` : ''}`;

/** The card the publisher signed: intended use, limitations, data, results overall and per segment. */
function structuredCard(detail: ReleaseRecord): HTMLElement {
  const card = detail.signed?.signed?.modelCard;
  if (!card) return h('p', { class: 'empty' }, 'No structured model card in the signed release.');
  const pairs: Array<[string, string]> = [];
  if (card.intendedUse) pairs.push(['intended use', card.intendedUse]);
  if (card.limitations) pairs.push(['limitations', card.limitations]);
  if (card.trainingData) pairs.push(['training data', card.trainingData]);
  for (const r of card.evaluation ?? []) pairs.push(['evaluation', resultText(r)]);
  for (const s of card.segments ?? [])
    pairs.push([`segment ${s.segment}`, s.results.map(resultText).join(', ')]);
  return h('div', { 'data-testid': 'structured-card' }, kv(pairs));
}

function signedLineage(detail: ReleaseRecord): HTMLElement {
  const lineage = detail.signed?.signed?.lineage;
  if (!lineage) return h('p', { class: 'empty' }, 'None in the signed release.');
  const pairs: Array<[string, string]> = Object.entries(lineage).map(([k, v]) => [
    k,
    typeof v === 'string' ? v : JSON.stringify(v),
  ]);
  return h('div', { 'data-testid': 'signed-lineage' }, kv(pairs));
}

/** The gates the release was signed with: each one's number and limit, its data, the production compared with. */
function signedGates(detail: ReleaseRecord): HTMLElement {
  const gates = detail.signed?.signed?.gates;
  if (!gates) return h('p', { class: 'empty' }, 'No gates recorded in the signed release.');
  const against = gates.against
    ? `${gates.against.app}/${gates.against.channel} production ${gates.against.version ?? '(none then)'}`
    : 'no production release';
  const pairs: Array<[string, string]> = [
    ['data', `${gates.frames} frames, sha256 ${gates.dataset.slice(0, 16)}…`],
    ['against', against],
    ...gates.results.map((g): [string, string] => [
      g.name,
      `${g.value === null ? 'passed' : g.value}${g.limit === null ? '' : ` (limit ${g.limit})`}`,
    ]),
  ];
  return h('div', { 'data-testid': 'signed-gates' }, kv(pairs));
}
