import type { AuditEntry } from '../../../src/storage/types.ts';
import { h, section, table } from '../dom.ts';
import { num, time } from '../format.ts';

interface Arm {
  version?: string;
  inferences?: number;
  errorRate?: number;
  p95LatencyMs?: number | null;
}

interface Evidence {
  canary?: Arm;
  control?: Arm;
  errorRateZ?: number | null;
  drift?: Record<string, { canaryPsi?: number; controlPsi?: number | null }>;
}

/** Halts (by the canary analysis or by hand) and any canary.* verdict the server recorded. */
export function isVerdict(entry: AuditEntry): boolean {
  return entry.action === 'rollout.halt' || entry.action.startsWith('canary');
}

function evidenceOf(entry: AuditEntry): Evidence | null {
  const d = entry.details;
  const evidence = d.evidence as Evidence | undefined;
  return evidence && typeof evidence === 'object' ? evidence : null;
}

function reasonsOf(entry: AuditEntry): string[] {
  const d = entry.details;
  // The canary monitor writes its reasons into the evidence; an operator's halt has one reason.
  const reasons = (d.reasons ?? (d.evidence as { reasons?: unknown } | undefined)?.reasons) as unknown;
  if (Array.isArray(reasons)) return reasons.map(String);
  return typeof d.reason === 'string' ? [d.reason] : [];
}

function decisionOf(entry: AuditEntry): string {
  const d = entry.details;
  if (typeof d.decision === 'string') return d.decision;
  return entry.action === 'rollout.halt' ? 'halt' : entry.action;
}

function armsTable(evidence: Evidence): HTMLElement {
  const arm = (label: string, a: Arm | undefined) =>
    h(
      'tr',
      {},
      h('td', {}, `${label} ${a?.version ?? ''}`),
      h('td', {}, a?.inferences ?? '—'),
      h('td', {}, a?.errorRate === undefined ? '—' : `${num(a.errorRate * 100)}%`),
      h('td', {}, a?.p95LatencyMs === undefined ? '—' : `${num(a.p95LatencyMs)} ms`),
    );
  const drift = Object.entries(evidence.drift ?? {}).map(([feature, d]) =>
    h(
      'li',
      {},
      `${feature}: PSI ${num(d.canaryPsi, 3)} on the canary, ${num(d.controlPsi, 3)} on the control`,
    ),
  );
  return h(
    'div',
    { class: 'evidence' },
    table(
      ['arm', 'inferences', 'error rate', 'p95'],
      [arm('canary', evidence.canary), arm('control', evidence.control)],
      '',
    ),
    evidence.errorRateZ !== undefined ? h('p', {}, `error-rate z = ${num(evidence.errorRateZ)}`) : null,
    drift.length > 0 ? h('ul', {}, drift) : null,
  );
}

export function verdictsView(entries: AuditEntry[]): HTMLElement {
  const rows = entries.filter(isVerdict).map((e) => {
    const evidence = evidenceOf(e);
    const decision = decisionOf(e);
    return h(
      'tr',
      { 'data-testid': 'verdict-row', 'data-decision': decision },
      h('td', {}, time(e.at)),
      h('td', {}, `${e.model ?? ''}@${String(e.details.release ?? '')}`),
      h('td', {}, h('span', { class: `badge ${decision}` }, decision)),
      h('td', {}, evidence ? 'canary analysis' : `by hand (${e.actor})`),
      h(
        'td',
        {},
        h('ul', { class: 'reasons' }, ...reasonsOf(e).map((r) => h('li', {}, r))),
        evidence && armsTable(evidence),
      ),
    );
  });
  return section(
    'Canary verdicts and halts',
    'verdicts',
    table(
      ['at', 'release', 'decision', 'decided', 'reasons and evidence'],
      rows,
      'No rollout has been halted.',
    ),
  );
}
