import {
  type Histogram,
  histogramCount,
  histogramQuantile,
  populationStabilityIndex,
  SEGMENT_DIMENSIONS,
  type SegmentDimension,
} from '@edgeship/protocol';
import {
  type ArmStats,
  analyzeCanary,
  type CanaryPolicy,
  type CanaryVerdict,
  type Criterion,
  type InstallTest,
} from './analysis.ts';
import type { Arm, InstallEvidence } from './evidence.ts';
import {
  alwaysValidP,
  clusteredRate,
  type Estimate,
  fencedTrimmedMean,
  holm,
  marginZ,
} from './install-stats.ts';
import { inScope, scopesOf, splitBy } from './segments.ts';

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
 * - **Installs as the unit** (install-stats.ts): error rates with a cluster-robust variance,
 *   latency as each install's p95 compared by trimmed means, each as "canary worse than control
 *   by more than the margin", with always-valid p-values (the monitor looks every 30 s for days).
 * - **Segments** (segments.ts): the same tests on each browser, OS, backend, device class and
 *   runtime with enough installs, Holm across every test, so one regressed segment halts the
 *   rollout and many segments do not add false halts. Drift stays pooled, on the whole fleet.
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
  const releases: Record<'canary' | 'control', ArmReleases> = {
    canary: canaryRelease,
    control: controlRelease,
  };
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
  // Errors and latency: install-level tests, overall and per segment, Holm across all of them.
  const { scopes, merge } = scopesOf(
    [arms.canary.map((w) => w.row), arms.control.map((w) => w.row)],
    policy.minSegmentInstalls,
  );
  const tests: InstallTest[] = [];
  const logP95 = logP95PerInstall([...arms.canary, ...arms.control], policy);
  const seen = new Set<string>();
  const ids = new Map([...arms.canary, ...arms.control].map((w, i) => [w, i]));
  for (const scope of scopes) {
    const canary = arms.canary.filter((w) => inScope(w.row, scope, merge));
    const control = arms.control.filter((w) => inScope(w.row, scope, merge));
    // A segment with the same installs as one already tested (one browser version of a browser,
    // all of one OS on one backend) would only cost budget: test each set of installs once.
    const members = membership(canary, control, ids);
    if (seen.has(members)) continue;
    seen.add(members);
    const errors = errorTest(canary, control, releases, policy);
    if (errors) tests.push({ scope: scope.name, criterion: 'errors', ...errors, regressed: false });
    const latency = latencyTest(canary, control, logP95, policy);
    if (latency) tests.push({ scope: scope.name, criterion: 'latency', ...latency, regressed: false });
  }
  const rejected = holm(
    tests.map((t) => t.p),
    policy.alpha,
  );
  tests.forEach((t, i) => {
    t.regressed = rejected[i]!;
    if (t.regressed) reasons.push(describe(t, policy));
  });
  // Drift stays a pooled comparison of distributions (PSI), judged on the whole fleet, trimmed.
  const score = scorer('drift');
  const monitored = Object.keys(releases.canary.references).length > 0;
  const drift = !monitored
    ? null
    : analyzeCanary(
        sum(trim(arms.canary, score, releases.canary, policy.trimShare), releases.canary),
        sum(trim(arms.control, score, releases.control, policy.trimShare), releases.control),
        policy,
        new Set<Criterion>(['drift']),
      );
  if (drift?.decision === 'halt') reasons.push(...drift.reasons);
  return {
    decision: reasons.length > 0 ? 'halt' : 'healthy',
    reasons,
    evidence: {
      ...evidence,
      tests,
      segments: segmentSplit(arms, merge),
      segmentInstalls: segmentSplit(arms, (_, value) => value),
    },
  };
}

/** A signature of a set of installs (sizes and two sums of mixed indices: collisions are negligible). */
function membership(canary: Weighted[], control: Weighted[], ids: Map<Weighted, number>): string {
  let a = 0;
  let b = 0;
  for (const w of [...canary, ...control]) {
    const i = ids.get(w)!;
    a = (a + Math.imul(i + 1, 2654435761)) >>> 0;
    b = (b + Math.imul(i + 7, 40503) + (i << 3)) >>> 0;
  }
  return `${canary.length}:${control.length}:${a}:${b}`;
}

type TestResult = Omit<InstallTest, 'scope' | 'criterion' | 'regressed'>;

/** "The canary fails more often than the control by more than the margin", on installs. */
function errorTest(
  canary: Weighted[],
  control: Weighted[],
  releases: Record<Arm, ArmReleases>,
  policy: CanaryPolicy,
): TestResult | null {
  const score = scorer('errors');
  const unit = ({ row, weight }: Weighted) => ({ events: eventsOf(row), errors: row.errors, weight });
  const c = clusteredRate(trim(canary, score, releases.canary, policy.trimShare).map(unit));
  const k = clusteredRate(trim(control, score, releases.control, policy.trimShare).map(unit));
  return c && k ? marginTest(c, k, policy.errorRateMargin, policy) : null;
}

/**
 * "The canary is slower than the control by more than the margin", on installs: each install's
 * p95 latency, in logs (device speeds spread multiplicatively), compared by trimmed means of
 * the installs within the outlier fence (install-stats.ts fencedTrimmedMean: forgers far out at
 * one end must not make the trim asymmetric).
 */
function latencyTest(
  canary: Weighted[],
  control: Weighted[],
  logP95: Map<InstallEvidence, number>,
  policy: CanaryPolicy,
): TestResult | null {
  const values = (arm: Weighted[]) => arm.flatMap((w) => logP95.get(w.row) ?? []);
  const c = fencedTrimmedMean(values(canary), policy.trimShare);
  const k = fencedTrimmedMean(values(control), policy.trimShare);
  return c && k ? marginTest(c, k, Math.log(policy.latencyMarginRatio), policy) : null;
}

/**
 * "The canary's estimate exceeds the control's by more than `margin`": the z of that gap and its
 * always-valid p, on as many installs as the smaller arm has (errorTest and latencyTest alike).
 */
function marginTest(canary: Estimate, control: Estimate, margin: number, policy: CanaryPolicy): TestResult {
  const z = marginZ(canary, control, margin);
  const units = Math.min(canary.units, control.units);
  return {
    canary: canary.value,
    control: control.value,
    installs: { canary: canary.units, control: control.units },
    z,
    p: alwaysValidP(z, units, policy.alpha, policy.lookHorizonInstalls),
  };
}

/** Each install's log p95 latency, once per analysis (installs with too few timed inferences have none). */
function logP95PerInstall(arm: Weighted[], policy: CanaryPolicy): Map<InstallEvidence, number> {
  const out = new Map<InstallEvidence, number>();
  for (const { row } of arm) {
    const { count, logP95 } = latencyOf(row);
    if (count < policy.minLatencySamples) continue;
    out.set(row, logP95);
  }
  return out;
}

/**
 * Per-install figures kept between looks: the evidence store hands out the same row object until
 * the row changes (canary/evidence.ts), so an unchanged install is not recomputed at every look.
 */
const latencies = new WeakMap<InstallEvidence, { count: number; logP95: number }>();
const drifts = new WeakMap<InstallEvidence, { release: ArmReleases['references']; psi: number }>();

function latencyOf(row: InstallEvidence): { count: number; logP95: number } {
  let known = latencies.get(row);
  if (!known) {
    known = {
      count: histogramCount(row.latency),
      logP95: Math.log(Math.max(histogramQuantile(row.latency, 0.95) ?? 0, 1e-3)),
    };
    latencies.set(row, known);
  }
  return known;
}

function describe(t: InstallTest, policy: CanaryPolicy): string {
  const where = t.scope === 'all' ? '' : ` on ${t.scope}`;
  const n = `${t.installs.canary} vs ${t.installs.control} installs, p = ${t.p.toPrecision(2)}`;
  if (t.criterion === 'errors') {
    return `error rate${where} ${pct(t.canary)} vs ${pct(t.control)} on the control, beyond the ${pct(policy.errorRateMargin)} margin (${n})`;
  }
  return `p95 latency${where} of the typical install ${Math.exp(t.canary).toFixed(2)} ms vs ${Math.exp(t.control).toFixed(2)} ms on the control, ${((Math.exp(t.canary - t.control) - 1) * 100).toFixed(0)}% slower, beyond the ${((policy.latencyMarginRatio - 1) * 100).toFixed(0)}% margin (${n})`;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}

function segmentSplit(
  arms: Record<Arm, Weighted[]>,
  merge: (dimension: SegmentDimension, value: string) => string,
): Record<string, Record<string, { canary: number; control: number }>> {
  const out: Record<string, Record<string, { canary: number; control: number }>> = {};
  for (const dimension of SEGMENT_DIMENSIONS) {
    const split: Record<string, { canary: number; control: number }> = {};
    for (const arm of ['canary', 'control'] as const) {
      for (const [value, rows] of splitBy(
        arms[arm].map((w) => w.row),
        dimension,
        merge,
      )) {
        split[value] ??= { canary: 0, control: 0 };
        split[value][arm] = rows.length;
      }
    }
    out[dimension] = split;
  }
  return out;
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
        const known = drifts.get(r);
        if (known && sameReferences(known.release, release.references)) return known.psi;
        let psi = 0;
        for (const [name, reference] of Object.entries(release.references)) {
          const counts = r.features[name];
          if (counts && counts.length === reference.length && counts.some((n) => n > 0)) {
            psi += populationStabilityIndex(reference, counts);
          }
        }
        drifts.set(r, { release: release.references, psi });
        return psi;
      };
  }
}

function sameReferences(a: ArmReleases['references'], b: ArmReleases['references']): boolean {
  if (a === b) return true;
  const names = Object.keys(a);
  if (names.length !== Object.keys(b).length) return false;
  return names.every((name) => {
    const x = a[name]!;
    const y = b[name];
    return y !== undefined && x.length === y.length && x.every((v, i) => v === y[i]);
  });
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
