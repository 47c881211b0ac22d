import { EdgeshipError } from '@edgeship/protocol/errors';
import { AdminApiError } from '../../../src/admin-client.ts';
import { chart } from '../charts.ts';
import { h, section, table } from '../dom.ts';
import {
  EMPTY_FLEET,
  type FleetData,
  type FleetPoint,
  featuresOf,
  normalizeFleet,
  seriesBy,
  shadowSeries,
} from '../fleet-data.ts';
import { num } from '../format.ts';
import type { ViewContext } from './context.ts';

const PERIODS: Array<[string, number]> = [
  ['last hour', 3_600_000],
  ['last 6 hours', 6 * 3_600_000],
  ['last day', 86_400_000],
  ['last week', 7 * 86_400_000],
];
/** PSI above this is drift (the server's default canary policy). */
const PSI_THRESHOLD = 0.2;

let period = PERIODS[2]![1];
let chosenRelease: string | null = null;

interface FleetScope {
  app: string;
  channel: string;
  models: string[];
  model: string;
  /** The model's releases, most relevant first (rollout, production, newest). */
  releases: string[];
}

/** Per release: versions in use, latency percentiles, error rate, drift and shadow agreement over time. */
export function fleetView(
  ctx: ViewContext,
  scope: FleetScope,
  onModel: (model: string) => void,
): HTMLElement {
  const release =
    chosenRelease && scope.releases.includes(chosenRelease) ? chosenRelease : (scope.releases[0] ?? null);
  const charts = h(
    'div',
    { class: 'charts', 'data-testid': 'fleet-charts', 'data-state': 'loading' },
    h('p', {}, 'Loading…'),
  );
  const modelPick = h(
    'select',
    {
      'data-testid': 'fleet-model',
      'aria-label': 'model',
      onchange: (e: Event) => onModel((e.target as HTMLSelectElement).value),
    },
    ...scope.models.map((m) => h('option', { value: m, selected: m === scope.model }, m)),
  );
  const releasePick = h(
    'select',
    { 'data-testid': 'fleet-release', 'aria-label': 'release' },
    ...scope.releases.map((v) => h('option', { value: v, selected: v === release }, v)),
  );
  const periodPick = h(
    'select',
    { 'data-testid': 'fleet-period', 'aria-label': 'period' },
    ...PERIODS.map(([label, ms]) => h('option', { value: ms, selected: ms === period }, label)),
  );
  let data: FleetData = EMPTY_FLEET;
  const draw = () =>
    charts.replaceChildren(
      liveVerdicts(data),
      summary(data),
      pipelineTable(data),
      stuckDevices(data),
      ...fleetCharts(data, scope.releases, releasePick.value || null),
    );
  const load = async () => {
    charts.dataset.state = 'loading';
    try {
      const since = new Date(Date.now() - period).toISOString();
      data = normalizeFleet(
        await ctx.api.fleet({ app: scope.app, channel: scope.channel, model: scope.model, since }),
      );
      charts.dataset.state = data.points.length > 0 ? 'data' : 'empty';
      draw();
    } catch (error) {
      data = EMPTY_FLEET;
      charts.dataset.state = 'error';
      draw();
      const missing = error instanceof AdminApiError && error.status === 404;
      charts.prepend(
        h(
          'p',
          { class: 'empty', 'data-testid': 'fleet-error' },
          missing
            ? 'This server has no fleet statistics endpoint.'
            : `${error instanceof EdgeshipError ? error.code : 'E_UNEXPECTED'}: ${(error as Error).message}`,
        ),
      );
    }
  };
  releasePick.addEventListener('change', () => {
    chosenRelease = releasePick.value;
    draw();
  });
  periodPick.addEventListener('change', () => {
    period = Number(periodPick.value);
    void load();
  });
  void load();
  return section(
    'Fleet',
    'fleet',
    h(
      'div',
      { class: 'toolbar' },
      h('label', {}, 'model ', modelPick),
      h('label', {}, 'release ', releasePick),
      h('label', {}, 'period ', periodPick),
    ),
    charts,
  );
}

function fleetCharts(data: FleetData, releases: string[], release: string | null): HTMLElement[] {
  const inData = [...new Set(data.points.map((p) => p.release))];
  const all = [...new Set([...releases, ...inData])].filter((r) => inData.includes(r));
  const only = release ? [release] : [];
  const latency = seriesBy(data, only, () => null);
  const percentiles = (['p50', 'p95', 'p99'] as const).map((q) => ({
    label: q,
    values: seriesBy(data, only, (p) => p[q]).series[0]?.values ?? latency.times.map(() => null),
  }));
  const features = release ? featuresOf(data, release) : [];
  const drift = features.map((f) => ({
    label: f,
    values: seriesBy(data, only, (p) => p.drift[f] ?? null).series[0]?.values ?? [],
  }));
  const share = seriesBy(data, all, (p) => (p.share === null ? null : p.share * 100));
  const errors = seriesBy(data, all, (p) => (p.errorRate === null ? null : p.errorRate * 100));
  const agreement = shadowSeries(data);
  const shadow = {
    times: agreement.times,
    series: agreement.series.map((x) => ({
      ...x,
      values: x.values.map((v) => (v === null ? null : v * 100)),
    })),
  };
  const stepSec = data.stepSec ?? undefined;
  return [
    chart({
      testid: 'chart-share',
      title: 'Versions in use (share of devices)',
      unit: '%',
      stepSec,
      ...share,
    }),
    chart({
      testid: 'chart-latency',
      title: `Latency of ${release ?? '—'}`,
      unit: 'ms',
      stepSec,
      times: latency.times,
      series: percentiles,
    }),
    chart({ testid: 'chart-errors', title: 'Error rate', unit: '%', stepSec, ...errors }),
    chart({
      testid: 'chart-drift',
      title: `Drift of ${release ?? '—'} (PSI per feature)`,
      unit: 'PSI',
      stepSec,
      times: latency.times,
      series: drift,
      threshold: PSI_THRESHOLD,
    }),
    ...(shadow.series.some((s) => s.values.some((v) => v !== null))
      ? [chart({ testid: 'chart-shadow', title: 'Shadow agreement', unit: '%', stepSec, ...shadow })]
      : []),
  ];
}

/** The canary analysis' current verdict on each running canary (what would halt it, and why). */
function liveVerdicts(data: FleetData): HTMLElement {
  const items = data.live.map((v) =>
    h(
      'li',
      { 'data-testid': 'live-verdict', 'data-decision': v.decision },
      h('span', { class: `badge ${v.decision}` }, v.decision),
      ` ${v.release}: `,
      v.reasons.join('; ') || 'no regression found',
      v.excluded.length > 0
        ? h('p', { 'data-testid': 'excluded-segments' }, `Excluded: ${v.excluded.join(', ')}`)
        : null,
      v.segments.length > 0
        ? h(
            'ul',
            { class: 'segments', 'data-testid': 'segment-split' },
            v.segments.map((d) =>
              h(
                'li',
                { 'data-dimension': d.dimension },
                `${d.dimension}: `,
                d.values.map((x) => `${x.value} ${x.canary}/${x.control}`).join(', '),
                ' installs (canary/control)',
              ),
            ),
          )
        : null,
    ),
  );
  return h(
    'div',
    { class: 'live-verdicts' },
    items.length > 0 ? [h('h3', {}, 'Canary analysis now'), h('ul', {}, items)] : null,
  );
}

/**
 * Per release over the whole period: devices, share, inferences, error rate, latency, drifted
 * features, live accuracy from the app's feedback and outcome means.
 */
function summary(data: FleetData): HTMLElement {
  const pct = (x: number | null) => (x === null ? '—' : `${num(x * 100)}%`);
  const drifted = (p: FleetPoint) =>
    Object.entries(p.drift)
      .filter(([, psi]) => psi !== null && psi > PSI_THRESHOLD)
      .map(([f, psi]) => `${f} (PSI ${num(psi, 3)})`)
      .join(', ') || 'none';
  const rows = data.totals.map((p) =>
    h(
      'tr',
      { 'data-testid': 'fleet-release-row', 'data-release': p.release },
      h('td', {}, p.release),
      h('td', { 'data-testid': 'fleet-devices' }, p.devices ?? '—'),
      h('td', { 'data-testid': 'fleet-share' }, pct(p.share)),
      h('td', { 'data-testid': 'fleet-inferences' }, p.inferences),
      h('td', { 'data-testid': 'fleet-error-rate' }, pct(p.errorRate)),
      h('td', { 'data-testid': 'fleet-latency' }, `${num(p.p50)} / ${num(p.p95)} / ${num(p.p99)} ms`),
      h('td', { 'data-testid': 'fleet-drifted' }, drifted(p)),
      h(
        'td',
        { 'data-testid': 'fleet-accuracy' },
        p.labelled > 0 ? `${pct(p.accuracy)} (${p.labelled})` : '—',
      ),
      h(
        'td',
        { 'data-testid': 'fleet-outcomes' },
        p.outcomes.map((o) => `${o.name} ${num(o.mean, 3)} (${o.count})`).join(', ') || '—',
      ),
    ),
  );
  return h(
    'div',
    { class: 'fleet-summary', 'data-testid': 'fleet-summary' },
    table(
      [
        'release',
        'devices',
        'share of devices',
        'inferences',
        'error rate',
        'latency p50 / p95 / p99',
        'drifted features',
        'accuracy (labelled)',
        'outcomes: mean (count)',
      ],
      rows,
      'No telemetry in this period.',
    ),
  );
}

/** Per release: downloads, update failures by code, backend fallbacks, persisted storage. */
function pipelineTable(data: FleetData): HTMLElement {
  const pct = (x: number | null) => (x === null ? '—' : `${num(x * 100)}%`);
  const list = (r: Record<string, number>) =>
    Object.entries(r)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || 'none';
  const rows = data.pipeline.map((p) =>
    h(
      'tr',
      { 'data-testid': 'pipeline-row', 'data-release': p.release },
      h('td', {}, p.release),
      h('td', {}, p.downloads),
      h('td', {}, p.meanDownloadMs === null ? '—' : `${num(p.meanDownloadMs)} ms`),
      h('td', {}, pct(p.resumedShare)),
      h('td', { 'data-testid': 'pipeline-failures' }, `${pct(p.failureRate)} (${list(p.failures)})`),
      h('td', {}, list(p.fallbacks)),
      h('td', {}, pct(p.persistedShare)),
    ),
  );
  return h(
    'div',
    { class: 'fleet-pipeline', 'data-testid': 'fleet-pipeline' },
    h('h3', {}, 'Update pipeline'),
    table(
      [
        'release',
        'downloads',
        'mean download',
        'resumed',
        'update failures',
        'backend fallbacks',
        'persisted',
      ],
      rows,
      'No update reports in this period.',
    ),
  );
}

/** Devices whose latest report is on a version older than their bucket should run. */
function stuckDevices(data: FleetData): HTMLElement {
  const items = data.stuck.map((s) =>
    h(
      'li',
      { 'data-testid': 'stuck-devices', 'data-model': s.model, 'data-stuck': s.stuck },
      `${s.model}: ${s.stuck} of ${s.judged} devices${s.share === null ? '' : ` (${num(s.share * 100)}%)`} stuck after ${s.graceSec} s`,
      Object.keys(s.byVersion).length > 0
        ? `, on ${Object.entries(s.byVersion)
            .map(([v, n]) => `${v} ×${n}`)
            .join(', ')}`
        : '',
    ),
  );
  return h(
    'div',
    { class: 'stuck' },
    items.length > 0 ? [h('h3', {}, 'Devices stuck on old versions'), h('ul', {}, items)] : null,
  );
}
