import { type Histogram, histogramQuantile, populationStabilityIndex } from '@edgeship/protocol';
import {
  ALL_CRITERIA,
  type ArmStats,
  analyzeCanary,
  type CanaryPolicy,
  type CanaryVerdict,
  type Criterion,
} from './analysis.ts';
import type { Arm, InstallEvidence } from './evidence.ts';

/**
 * The canary verdict on per-install evidence, made so that a minority of lying installs can
 * neither halt a healthy canary nor hide a regressed one:
 *
 * - **Sources**: no verdict until each arm has evidence from `minInstalls` installs and
 *   `minPrefixes` network prefixes.
 * - **Weight clipping**: an install counts for at most `weightClip` times the arm's median
 *   install (its numbers are scaled down), so a flood from a few installs weighs like a few.
 * - **Trimming**: each criterion (error rate, p95 latency, drift) is judged after dropping the
 *   `trimShare` of installs that look best and the share that look worst on that criterion, in
 *   both arms. Forged installs at the extremes are dropped; forged installs inside the kept range
 *   can move the result only as far as honest installs already spread (a trimmed mean's bound).
 */

export interface ArmReleases {
  version: string;
  /** Reference shares per monitored feature of this arm's release. */
  references: Record<string, number[]>;
}

export function analyzeEvidence(
  rows: InstallEvidence[],
  canaryRelease: ArmReleases,
  controlRelease: ArmReleases,
  policy: CanaryPolicy,
): CanaryVerdict {
  const arms = {
    canary: weigh(
      rows.filter((r) => r.arm === 'canary'),
      policy.weightClip,
    ),
    control: weigh(
      rows.filter((r) => r.arm === 'control'),
      policy.weightClip,
    ),
  };
  const releases: Record<Arm, ArmReleases> = { canary: canaryRelease, control: controlRelease };
  const sources = {
    canary: sourcesOf(arms.canary),
    control: sourcesOf(arms.control),
  };
  const whole = analyzeCanary(sum(arms.canary, releases.canary), sum(arms.control, releases.control), policy);
  const evidence = { ...whole.evidence, sources };
  const short = (['canary', 'control'] as const).filter(
    (arm) => sources[arm].installs < policy.minInstalls || sources[arm].prefixes < policy.minPrefixes,
  );
  if (short.length > 0) {
    return {
      decision: 'insufficient-data',
      reasons: short.map(
        (arm) =>
          `the ${arm} has evidence from ${sources[arm].installs} installs on ${sources[arm].prefixes} networks; ` +
          `a verdict needs ${policy.minInstalls} installs on ${policy.minPrefixes} networks`,
      ),
      evidence,
    };
  }
  if (whole.decision === 'insufficient-data') return { ...whole, evidence };

  const reasons: string[] = [];
  for (const criterion of ALL_CRITERIA) {
    const score = scorer(criterion);
    const verdict = analyzeCanary(
      sum(trim(arms.canary, score, releases.canary, policy.trimShare), releases.canary),
      sum(trim(arms.control, score, releases.control, policy.trimShare), releases.control),
      policy,
      new Set([criterion]),
    );
    if (verdict.decision === 'halt') reasons.push(...verdict.reasons);
  }
  return { decision: reasons.length > 0 ? 'halt' : 'healthy', reasons, evidence };
}

interface Weighted {
  row: InstallEvidence;
  weight: number;
}

const eventsOf = (r: InstallEvidence) => r.inferences + r.errors;

function weigh(rows: InstallEvidence[], clip: number): Weighted[] {
  const events = rows.map(eventsOf).sort((a, b) => a - b);
  const median = events.length === 0 ? 0 : events[Math.floor((events.length - 1) / 2)]!;
  const ceiling = Math.max(1, clip * median);
  return rows.map((row) => ({ row, weight: Math.min(1, ceiling / Math.max(1, eventsOf(row))) }));
}

function sourcesOf(arm: Weighted[]) {
  return { installs: arm.length, prefixes: new Set(arm.map((w) => w.row.prefix)).size };
}

type Score = (row: InstallEvidence, release: ArmReleases) => number;

/** How bad one install looks on one criterion (higher is worse). */
function scorer(criterion: Criterion): Score {
  switch (criterion) {
    case 'errors':
      return (r) => r.errors / Math.max(1, eventsOf(r));
    case 'latency':
      return (r) => histogramQuantile(r.latency, 0.95) ?? 0;
    case 'drift':
      return (r, release) => {
        let psi = 0;
        for (const [name, reference] of Object.entries(release.references)) {
          const counts = r.features[name];
          if (counts && counts.length === reference.length && counts.some((n) => n > 0)) {
            psi += populationStabilityIndex(reference, counts);
          }
        }
        return psi;
      };
  }
}

/** Drops the `share` of installs scoring lowest and the `share` scoring highest. */
function trim(arm: Weighted[], score: Score, release: ArmReleases, share: number): Weighted[] {
  const cut = Math.floor(arm.length * share);
  if (cut === 0) return arm;
  return arm
    .map((w) => ({ w, s: score(w.row, release) }))
    .sort((a, b) => a.s - b.s)
    .slice(cut, arm.length - cut)
    .map(({ w }) => w);
}

function scaled(h: Histogram, weight: number, into: Histogram): void {
  for (const [k, n] of Object.entries(h)) into[k] = (into[k] ?? 0) + n * weight;
}

/** An arm's weighted sum, in the form analyzeCanary judges. */
function sum(arm: Weighted[], release: ArmReleases): ArmStats {
  const stats: ArmStats = { version: release.version, inferences: 0, errors: 0, latencyMs: {}, features: {} };
  const features: Record<string, number[]> = {};
  for (const { row, weight } of arm) {
    stats.inferences += row.inferences * weight;
    stats.errors += row.errors * weight;
    scaled(row.latency, weight, stats.latencyMs);
    for (const [name, counts] of Object.entries(row.features)) {
      const into = features[name] ?? [];
      counts.forEach((n, i) => {
        into[i] = (into[i] ?? 0) + n * weight;
      });
      features[name] = into;
    }
  }
  for (const [name, reference] of Object.entries(release.references)) {
    const counts = features[name];
    if (counts && counts.length === reference.length && counts.some((n) => n > 0)) {
      stats.features[name] = { counts, reference };
    }
  }
  return stats;
}
