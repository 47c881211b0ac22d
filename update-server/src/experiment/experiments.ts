import { MAX_ROLLOUT_ARMS, rolloutArms } from '@edgeship/protocol';
import type { Kysely } from 'kysely';
import { type Arm, controlFrom, treatmentArm } from '../canary/evidence.ts';
import type { CanaryMonitor } from '../canary/monitor.ts';
import { invalidState, notFound, UnprocessableError } from '../http/api-errors.ts';
import type { Actor, RegistryService } from '../registry/service.ts';
import type { Database } from '../storage/schema.ts';
import type { RegistryStore, RolloutRecord } from '../storage/types.ts';
import { emptyValues, mergeValues, type QualityStats } from '../telemetry/aggregate.ts';
import type { TelemetryService } from '../telemetry/service.ts';
import {
  type ArmData,
  type ArmEstimate,
  analyseExperiment,
  armEstimate,
  DEFAULT_DESIGN,
  type ExperimentDesign,
  type ExperimentVerdict,
  type SampleSizeEstimate,
  sampleSize,
  type UnitSums,
} from './analysis.ts';
import { allocateShares, MIN_REALLOCATION_BPS, probabilityBest } from './thompson.ts';

/** The primary metric: an outcome's mean (a rate for 0/1 outcomes), or accuracy from feedback. */
export type ExperimentMetric = { kind: 'outcome'; name: string } | { kind: 'accuracy' };

export interface ExperimentInput {
  app: string;
  channel: string;
  model: string;
  /** The treatment; the control is the channel's production release. */
  release?: string;
  /**
   * Several treatments (1 to MAX_ROLLOUT_ARMS, instead of `release`): one rollout whose arms the
   * manifest carries, each on `shareBps` of the fleet, judged each against the control.
   */
  treatments?: string[];
  /**
   * Share of the fleet on each treatment (the control arm is sampled from the rest). Default: an
   * equal split, 50% with one treatment.
   */
  shareBps?: number;
  metric: ExperimentMetric;
  alpha?: number;
  minimumEffect: number;
  direction?: 'increase' | 'decrease';
  minInstallsPerArm?: number;
  /** Per-install standard deviation of the metric; default: from the control's last day of telemetry. */
  sdPerInstall?: number;
  /**
   * 'fixed' (the default): the shares stay as started and the mSPRT verdict holds. 'thompson'
   * (two or more treatments): each monitor pass re-splits the treatments' total by their posterior
   * probability of being the best (thompson.ts), each arm keeping `floorBps`; no winner verdict then.
   */
  allocation?: 'fixed' | 'thompson';
  /** Thompson: the least share an arm keeps. Default: a fifth of an equal split. */
  floorBps?: number;
}

/** What is stored with the rollout: the design, and the estimate made before it started. */
export interface ExperimentSpec {
  metric: ExperimentMetric;
  design: ExperimentDesign;
  /** Absent in experiments stored before it: fixed. */
  allocation?: { kind: 'fixed' } | { kind: 'thompson'; floorBps: number };
  estimate: SampleSizeEstimate & { sdPerInstall: number | null; installsPerDay: number | null; power: 0.8 };
}

export interface ExperimentView {
  rollout: RolloutRecord;
  spec: ExperimentSpec;
  /** On the primary metric (analysis.ts); a halted rollout (a guardrail breach) is stopped for harm. */
  verdict: ExperimentVerdict;
  /** The canary rules on errors, latency and drift (the monitor halts the rollout on a breach). */
  guardrails: { decision: string; reasons: string[] } | null;
}

const DAY_SEC = 86_400;

/**
 * Experiments (issue 18 item 2): a canary-mode rollout of one or more treatments (the rollout's
 * arms, signed into the manifest) against the channel's production release, split by bucket like
 * any rollout, with a primary metric judged by the
 * mSPRT of analysis.ts per install, from the canary evidence (the same bucket, seen-before and
 * cap rules decide what counts). The canary monitor keeps judging its guardrails and halts it on
 * a breach, as it halts a canary.
 */
/** Who halts an experiment on harm, in the audit trail. */
export const EXPERIMENT_ACTOR = { name: 'experiment-analysis' };

export class Experiments {
  constructor(
    private readonly deps: {
      db: Kysely<Database>;
      registry: RegistryStore;
      service: RegistryService;
      telemetry: TelemetryService;
      canary: CanaryMonitor;
      now?: () => Date;
    },
  ) {}

  async start(actor: Actor, input: ExperimentInput): Promise<ExperimentView> {
    const design: ExperimentDesign = {
      alpha: input.alpha ?? DEFAULT_DESIGN.alpha,
      minimumEffect: input.minimumEffect,
      direction: input.direction ?? 'increase',
      minInstallsPerArm: input.minInstallsPerArm ?? DEFAULT_DESIGN.minInstallsPerArm,
    };
    const state = await this.deps.registry.getChannelModel(input.app, input.channel, input.model);
    if (!state?.production) {
      throw invalidState(`${input.app}/${input.channel} serves no production ${input.model} to compare with`);
    }
    const treatments = treatmentsOf(input);
    const shareBps = input.shareBps ?? Math.floor(10_000 / (treatments.length + 1));
    const total = shareBps * treatments.length;
    if (total >= 10_000)
      throw new UnprocessableError(
        `${treatments.length} treatments at ${shareBps} bp each leave no control: at most ${Math.floor(9_999 / treatments.length)} bp each`,
      );
    const floorBps = input.floorBps ?? Math.max(1, Math.floor(shareBps / 5));
    if (input.allocation === 'thompson' && (treatments.length < 2 || floorBps * treatments.length > total))
      throw new UnprocessableError(
        `thompson allocation needs two or more treatments, each floor (${floorBps} bp) within its share`,
      );
    const history = await this.history(input, state.production);
    const sdPerInstall = input.sdPerInstall ?? history.sdPerInstall;
    // The smallest arm sets the pace: the control is sampled from the top of the range (evidence.ts).
    const smallest = Math.min(shareBps, 10_000 - controlFrom(total));
    const estimate = sdPerInstall
      ? sampleSize(design, {
          sdPerInstall,
          arms: treatments.length + 1,
          power: 0.8,
          installsPerDay: history.installsPerDay ?? undefined,
          shareBps: (treatments.length + 1) * smallest,
        })
      : { installsPerArm: design.minInstallsPerArm, days: null };
    const spec: ExperimentSpec = {
      metric: input.metric,
      design,
      allocation: input.allocation === 'thompson' ? { kind: 'thompson', floorBps } : { kind: 'fixed' },
      estimate: {
        ...estimate,
        sdPerInstall: sdPerInstall ?? null,
        installsPerDay: history.installsPerDay,
        power: 0.8,
      },
    };
    const rollout = await this.deps.service.createRollout(actor, {
      app: input.app,
      channel: input.channel,
      model: input.model,
      release: treatments[0]!,
      shareBps,
      mode: 'canary',
      ...(treatments.length > 1 && { arms: treatments.map((release) => ({ release, shareBps })) }),
    });
    await this.deps.db
      .insertInto('experiments')
      .values({ rollout_id: rollout.id, spec: JSON.stringify(spec), created_at: rollout.createdAt })
      .execute();
    return this.view(rollout.id);
  }

  async view(rolloutId: string): Promise<ExperimentView> {
    const row = await this.deps.db
      .selectFrom('experiments')
      .selectAll()
      .where('rollout_id', '=', rolloutId)
      .executeTakeFirst();
    const rollout = row && (await this.deps.registry.getRollout(rolloutId));
    if (!row || !rollout) throw notFound('experiment');
    const spec = JSON.parse(row.spec) as ExperimentSpec;
    const verdict = await this.primaryVerdict(rollout, spec);
    const canary = rollout.state === 'active' ? await this.deps.canary.analyse(rollout) : null;
    return {
      rollout,
      spec,
      verdict,
      guardrails: canary ? { decision: canary.decision, reasons: canary.reasons } : null,
    };
  }

  /** The experiments whose rollout is active: the monitor's passes read these, not the history. */
  private running() {
    return this.deps.db
      .selectFrom('experiments')
      .innerJoin('rollouts', 'rollouts.id', 'experiments.rollout_id')
      .where('rollouts.state', '=', 'active')
      .selectAll('experiments')
      .execute();
  }

  /**
   * The monitor's pass (on the leader): a running experiment whose primary metric is worse on the
   * treatment with confidence is halted, as a guardrail breach is, so harm found by the sequential
   * test stops the exposure instead of waiting for an operator to read the verdict.
   */
  async haltHarmful(): Promise<void> {
    for (const row of await this.running()) {
      const rollout = await this.deps.registry.getRollout(row.rollout_id);
      if (rollout?.state !== 'active') continue;
      const spec = JSON.parse(row.spec) as ExperimentSpec;
      const verdict = await this.primaryVerdict(rollout, spec);
      if (verdict.decision !== 'stopped-for-harm') continue;
      const metric = spec.metric.kind === 'outcome' ? `outcome ${spec.metric.name}` : 'accuracy';
      // Every arm stops: the arms share one split of the buckets (see CanaryMonitor.judgeArms).
      const all = rollout.arms ? `; all ${rollout.arms.length} arms halted` : '';
      await this.deps.service.halt(
        EXPERIMENT_ACTOR,
        rollout.id,
        `experiment: ${metric} is worse on ${verdict.harmful.join(', ')} than on ${rollout.control ?? 'production'} (always-valid interval excludes no harm)${all}`,
        { verdict },
      );
    }
  }

  /**
   * The monitor's pass, after haltHarmful: each running Thompson experiment's arms are re-split by
   * their posterior probability of being the best treatment (thompson.ts), once every arm has
   * `minInstallsPerArm` installs, and only when some share moves by MIN_REALLOCATION_BPS or more.
   * The change goes through RegistryService.setArms: audited with the posterior, signed into the
   * next manifest.
   */
  async reallocate(): Promise<void> {
    for (const row of await this.running()) {
      const spec = JSON.parse(row.spec) as ExperimentSpec;
      if (spec.allocation?.kind !== 'thompson') continue;
      const rollout = await this.deps.registry.getRollout(row.rollout_id);
      if (rollout?.state !== 'active' || !rollout.arms) continue;
      const posterior = await this.posterior(rollout, spec);
      if (!posterior) continue;
      const shares = allocateShares(rollout.shareBps, posterior.probabilities, spec.allocation.floorBps);
      const moved = Math.max(...shares.map((s, i) => Math.abs(s - rollout.arms![i]!.shareBps)));
      if (moved < MIN_REALLOCATION_BPS) continue;
      await this.deps.service.setArms(
        EXPERIMENT_ACTOR,
        rollout.id,
        rollout.arms.map((a, i) => ({ release: a.release, shareBps: shares[i]! })),
        {
          allocation: 'thompson',
          floorBps: spec.allocation.floorBps,
          probabilities: rollout.arms.map((a, i) => ({
            release: a.release,
            pBest: posterior.probabilities[i],
          })),
          installs: posterior.installs,
        },
      );
    }
  }

  /**
   * Each treatment's probability of being the best, from the normal posterior of its per-install
   * estimate (thompson.ts); null until every treatment has `minInstallsPerArm` installs. Seeded by
   * the rollout and its installs, so the same evidence gives the same answer.
   */
  private async posterior(rollout: RolloutRecord, spec: ExperimentSpec) {
    const evidence = await this.deps.canary.evidence.evidence(rollout.id);
    const estimates = rolloutArms(rollout).map((_, i) =>
      armEstimate(
        weighed(
          evidence.filter((e) => e.arm === treatmentArm(i)).map((e) => metricOf(spec.metric, e.quality)),
        ),
      ),
    );
    if (estimates.some((e) => !e || e.installs < spec.design.minInstallsPerArm)) return null;
    const installs = estimates.map((e) => e!.installs);
    const seed = hashSeed(`${rollout.id}:${installs.join(',')}`);
    return {
      probabilities: probabilityBest(estimates as ArmEstimate[], spec.design.direction, seed),
      installs,
    };
  }

  private async primaryVerdict(rollout: RolloutRecord, spec: ExperimentSpec): Promise<ExperimentVerdict> {
    const rolloutId = rollout.id;
    const evidence = await this.deps.canary.evidence.evidence(rolloutId);
    const unitsOf = (arm: Arm): UnitSums[] =>
      weighed(evidence.filter((e) => e.arm === arm).map((e) => metricOf(spec.metric, e.quality)));
    // Each treatment arm's telemetry is what the installs of its bucket range sent for its release.
    const treatments = rolloutArms(rollout);
    const arms: ArmData[] = [
      { release: rollout.control ?? 'none', units: unitsOf('control') },
      ...treatments.map((arm, i) => ({ release: arm.release, units: unitsOf(treatmentArm(i)) })),
    ];
    const verdict = analyseExperiment(arms, spec.design);
    if (rollout.state === 'halted' && verdict.decision !== 'stopped-for-harm') {
      // A guardrail breach halted it (or an operator did): harm, whatever the primary metric says;
      // the arm whose guardrail halted it, when the canary analysis names one.
      const last = rollout.arms ? await this.deps.canary.lastVerdict(rollout.id) : undefined;
      const harmful =
        last?.verdict.decision === 'halt' && last.verdict.release
          ? [last.verdict.release]
          : treatments.map((a) => a.release);
      return { decision: 'stopped-for-harm', harmful, comparisons: verdict.comparisons };
    }
    // Adaptive allocation: harm still stops it (a safety stop, conservative), but no winner or
    // "no difference" from a test that assumes the split was fixed; the posterior instead.
    if (spec.allocation?.kind === 'thompson' && verdict.decision !== 'stopped-for-harm') {
      const posterior = await this.posterior(rollout, spec);
      if (!posterior)
        return verdict.decision === 'waiting'
          ? verdict
          : { decision: 'running', comparisons: verdict.comparisons };
      return {
        decision: 'adaptive',
        probabilities: treatments.map((a, i) => ({ release: a.release, pBest: posterior.probabilities[i]! })),
        comparisons: verdict.comparisons,
      };
    }
    return verdict;
  }

  async list(filter: { app?: string; channel?: string; model?: string }): Promise<ExperimentView[]> {
    const ids = (await this.deps.db.selectFrom('experiments').select('rollout_id').execute()).map(
      (r) => r.rollout_id,
    );
    const views = await Promise.all(ids.map((id) => this.view(id).catch(() => null)));
    return views.filter(
      (v): v is ExperimentView =>
        v !== null &&
        (!filter.app || v.rollout.app === filter.app) &&
        (!filter.channel || v.rollout.channel === filter.channel) &&
        (!filter.model || v.rollout.model === filter.model),
    );
  }

  /**
   * The control's last day: installs per day, and the metric's per-install sd, estimated as the
   * per-value sd over the square root of values per install (it leaves out the spread between
   * installs, so the estimate is a lower bound; pass `sdPerInstall` when it is known).
   */
  private async history(input: ExperimentInput, production: string) {
    const untilSec = Math.floor((this.deps.now?.() ?? new Date()).getTime() / 1000);
    const filter = {
      app: input.app,
      channel: input.channel,
      model: input.model,
      versions: [production],
      role: 'active' as const,
      since: untilSec - DAY_SEC,
    };
    const [rows, devices] = await Promise.all([
      this.deps.telemetry.store.aggregates(filter),
      this.deps.telemetry.store.deviceCounts(filter),
    ]);
    const sum = emptyValues();
    for (const [, v] of rows) mergeValues(sum, v);
    const installs = devices.find((d) => d.version === production && d.role === 'active')?.devices ?? 0;
    const { n, mean, sd } = valueStats(input.metric, sum.quality);
    const perInstall = installs > 0 ? n / installs : 0;
    return {
      installsPerDay: installs > 0 ? installs : null,
      sdPerInstall: sd !== null && perInstall > 0 && mean !== null ? sd / Math.sqrt(perInstall) : null,
    };
  }
}

/** A 32-bit seed from a string (FNV-1a). */
function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The treatments of an experiment: `treatments`, or the one `release`. */
function treatmentsOf(input: ExperimentInput): string[] {
  const list = input.treatments ?? (input.release ? [input.release] : []);
  if (input.treatments && input.release)
    throw new UnprocessableError('name the treatments in `treatments` or one in `release`, not both');
  if (list.length < 1 || list.length > MAX_ROLLOUT_ARMS)
    throw new UnprocessableError(`an experiment has 1 to ${MAX_ROLLOUT_ARMS} treatments, not ${list.length}`);
  if (new Set(list).size !== list.length)
    throw new UnprocessableError('each treatment is a different release');
  return list;
}

/**
 * Each install weighs at most twice the arm's median install (its values scaled down), as in the
 * canary analysis: a client can claim any number of outcomes, and one flood must not be the arm.
 */
export function weighed(units: UnitSums[]): UnitSums[] {
  const counts = units
    .map((u) => u.n)
    .filter((n) => n > 0)
    .sort((a, b) => a - b);
  if (counts.length === 0) return units;
  const clip = 2 * counts[Math.floor(counts.length / 2)]!;
  return units.map((u) => (u.n > clip ? { n: clip, sum: (u.sum * clip) / u.n } : u));
}

/** One install's observations of the metric: outcome values, or labelled predictions and the correct ones. */
function metricOf(metric: ExperimentMetric, q: QualityStats | undefined): UnitSums {
  if (!q) return { n: 0, sum: 0 };
  if (metric.kind === 'outcome') {
    const o = q.outcomes[metric.name];
    return { n: o?.count ?? 0, sum: o?.sum ?? 0 };
  }
  let n = 0;
  let sum = 0;
  for (const [cell, count] of Object.entries(q.confusion)) {
    const [actual, predicted] = cell.split(',');
    n += count;
    if (actual === predicted) sum += count;
  }
  return { n, sum };
}

function valueStats(metric: ExperimentMetric, q: QualityStats) {
  if (metric.kind === 'outcome') {
    const o = q.outcomes[metric.name];
    if (!o || o.count < 2) return { n: o?.count ?? 0, mean: null, sd: null };
    const mean = o.sum / o.count;
    return { n: o.count, mean, sd: Math.sqrt(Math.max(0, (o.sumSq - o.sum * mean) / (o.count - 1))) };
  }
  const { n, sum } = metricOf(metric, q);
  if (n < 2) return { n, mean: null, sd: null };
  const p = sum / n;
  return { n, mean: p, sd: Math.sqrt(p * (1 - p)) };
}
