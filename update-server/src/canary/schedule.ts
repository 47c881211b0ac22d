import { ConflictError } from '@edgeship/protocol';
import type { Insertable, Kysely, Selectable } from 'kysely';
import type { Logger } from 'pino';
import { invalidState, notFound, PolicyRefusedError } from '../http/api-errors.ts';
import type { Actor, RegistryService } from '../registry/service.ts';
import type { Database, RolloutSchedulesTable } from '../storage/schema.ts';
import type { RegistryStore, RolloutRecord } from '../storage/types.ts';
import type { CanaryVerdict } from './analysis.ts';
import type { StoredVerdict } from './verdicts.ts';

export const SCHEDULE_ACTOR: Actor = { name: 'rollout-schedule' };
const FULL_BPS = 10_000;

/**
 * running: widens on healthy verdicts; blocked: the channel's policy refused the next step (it
 * resumes once the policy allows it); completed: at its last stage, or promoted; halted: the canary
 * analysis (or an operator) halted the rollout; ended: the rollout ended otherwise, or an operator
 * set its share by hand.
 */
export type ScheduleState = 'running' | 'blocked' | 'completed' | 'halted' | 'ended';

/**
 * A schedule does not widen past a stage while a sizable segment of the fleet (a browser, OS,
 * backend, device class or runtime with at least `minShare` of the installs) has no verdict of
 * its own yet (fewer canary installs than the analysis' `minSegmentInstalls`, so it is merged into
 * 'other'): a regression confined to it would only be seen at a wider share. Instead, once the
 * stage is due, the schedule widens only as far as those segments need (a fill step, below the
 * next stage), and moves on once they are judged healthy. It waits at most `maxWaitMs` from when
 * the stage was first due; then it widens to the next stage anyway, saying which segments were
 * never judged (note and audit).
 */
export interface SegmentHold {
  /** Share of the installs (0..1) from which a segment must have its verdict; 0 turns the hold off. */
  minShare: number;
  /** How long a due stage holds for segments before it widens without their verdict. */
  maxWaitMs: number;
}

/** The hold's state on a schedule: the fill step's share and start, and since when the stage has waited. */
interface HoldState {
  fillBps: number | null;
  fillStartedAt: string | null;
  fillStartSamples: number;
  heldSince: string | null;
}

export const DEFAULT_SEGMENT_MIN_SHARE = 0.05;
const NO_HOLD: HoldState = { fillBps: null, fillStartedAt: null, fillStartSamples: 0, heldSince: null };
/** The default wait, in stage times (minStageMs). */
export const DEFAULT_SEGMENT_WAIT_STAGES = 3;
/** A fill step aims at this many times the installs a segment verdict needs (some never report). */
const FILL_MARGIN = 1.2;

/** A sizable segment without a verdict of its own, from the last verdict's install counts. */
export interface PendingSegment {
  /** `${dimension}=${value}`, as the verdict's segment tests name it. */
  scope: string;
  /** Its share of the installs both arms counted. */
  share: number;
  canaryInstalls: number;
}

export interface RolloutSchedule {
  rolloutId: string;
  /** Shares in basis points, ascending; a last stage of 10000 is reached by promotion. */
  stages: number[];
  minStageMs: number;
  /** Canary inferences each stage must gather, on top of what earlier stages had. */
  minSamples: number;
  /** Index into stages of the share the rollout is at. */
  stage: number;
  stageStartedAt: string;
  stageStartSamples: number;
  state: ScheduleState;
  note: string | null;
  createdBy: string;
  updatedAt: string;
  segmentHold: SegmentHold;
  /** A fill step's share (between this stage's and the next), or null when at the stage's own. */
  fillBps: number | null;
  /**
   * When the fill step began and the canary inferences then: a fill step is held like a stage
   * (minStageMs and minSamples of its own) so that the segments it filled are judged on more than
   * their first few reports before the schedule moves on.
   */
  fillStartedAt: string | null;
  fillStartSamples: number;
  /** When the stage was first due but held for segments without a verdict. */
  heldSince: string | null;
}

export interface ScheduleInput {
  stages: number[];
  minStageMs: number;
  minSamples: number;
  /** Defaults: minShare 0.05, maxWaitMs 3 x minStageMs. */
  segmentHold?: Partial<SegmentHold>;
}

export interface RolloutSchedulerDeps {
  db: Kysely<Database>;
  registry: RegistryStore;
  service: RegistryService;
  log: Logger;
  /** The canary monitor's last verdict on a rollout (canary/verdicts.ts). */
  lastVerdict: (rolloutId: string) => Promise<StoredVerdict<CanaryVerdict> | undefined>;
  /** Stage durations are measured on this clock (the server's telemetry clock). */
  now: () => Date;
  /** The analysis' CanaryPolicy.minSegmentInstalls: canary installs a segment verdict needs. */
  minSegmentInstalls: number;
  /**
   * The analysis' CanaryPolicy.minInstalls and minPrefixes: installs and networks each arm needs
   * for any verdict (a canary short of them is widened by a fill step, canaryShortfall).
   */
  minInstalls: number;
  minPrefixes: number;
}

/**
 * Rollouts that advance themselves: a canary with a schedule of stages (1% → 10% → 50% → 100%)
 * is widened to its next stage once the current one has lasted `minStageMs`, gathered
 * `minSamples` canary inferences, and the monitor's last verdict is healthy. Regressions halt it
 * as any canary (the monitor's analysis); the schedule then records the halt. Each widening goes
 * through RegistryService.setShare (and the last, to 100%, through promote), so it is audited
 * with the verdict it rested on and held to the channel's policy: a refusal (E_POLICY, audited
 * once) blocks the schedule until the policy allows the step. A due stage is held while a sizable
 * segment has no verdict yet (SegmentHold). Runs after each monitor pass, on the leader; its state
 * is in the database.
 */
export class RolloutScheduler {
  constructor(private readonly deps: RolloutSchedulerDeps) {}

  async get(rolloutId: string): Promise<RolloutSchedule | null> {
    const row = await this.deps.db
      .selectFrom('rollout_schedules')
      .selectAll()
      .where('rollout_id', '=', rolloutId)
      .executeTakeFirst();
    return row ? toSchedule(row) : null;
  }

  /** Puts a running canary rollout on a schedule; its current share must be one of the stages. */
  async attach(actor: Actor, rolloutId: string, input: ScheduleInput): Promise<RolloutSchedule> {
    const rollout = await this.deps.registry.getRollout(rolloutId);
    if (!rollout) throw notFound(`rollout ${rolloutId}`);
    if (rollout.state !== 'active')
      throw invalidState(`rollout ${rolloutId} is ${rollout.state}, not active`);
    if (rollout.mode !== 'canary') throw invalidState('only a canary rollout widens on verdicts');
    if (!rollout.control) throw invalidState('a canary with no control release has no verdicts to widen on');
    // Its share is its arms' (RegistryService.setShare refuses it): a schedule could never widen it.
    if (rollout.arms)
      throw invalidState(
        `rollout ${rolloutId} has ${rollout.arms.length} arms: an experiment is not widened by stages`,
      );
    const { stages } = input;
    if (
      stages.some((s, i) => !Number.isInteger(s) || s < 1 || s > FULL_BPS || (i > 0 && s <= stages[i - 1]!))
    )
      throw invalidState('stages must be ascending shares between 0.01% and 100%');
    const stage = stages.indexOf(rollout.shareBps);
    if (stage < 0)
      throw invalidState(
        `the rollout is at ${rollout.shareBps / 100}%: the schedule must include that share`,
      );
    if (await this.get(rolloutId)) throw new ConflictError(`rollout ${rolloutId} has a schedule already`);
    const hold = input.segmentHold ?? {};
    const minShare = hold.minShare ?? DEFAULT_SEGMENT_MIN_SHARE;
    const maxWaitMs = hold.maxWaitMs ?? DEFAULT_SEGMENT_WAIT_STAGES * input.minStageMs;
    if (!(minShare >= 0 && minShare <= 1)) throw invalidState('segmentHold.minShare must be between 0 and 1');
    if (!(maxWaitMs >= 0)) throw invalidState('segmentHold.maxWaitMs must not be negative');
    const at = this.deps.now().toISOString();
    const schedule: RolloutSchedule = {
      rolloutId,
      stages,
      minStageMs: input.minStageMs,
      minSamples: input.minSamples,
      stage,
      stageStartedAt: at,
      stageStartSamples: await this.canarySamples(rolloutId),
      state: 'running',
      note: null,
      createdBy: actor.name,
      updatedAt: at,
      segmentHold: { minShare, maxWaitMs },
      fillBps: null,
      fillStartedAt: null,
      fillStartSamples: 0,
      heldSince: null,
    };
    try {
      await this.deps.db.insertInto('rollout_schedules').values(toRow(schedule)).execute();
    } catch (error) {
      if (await this.get(rolloutId)) throw new ConflictError(`rollout ${rolloutId} has a schedule already`);
      throw error;
    }
    await this.audit(actor, rollout, 'rollout.schedule', {
      rolloutId,
      stages,
      minStageMs: input.minStageMs,
      minSamples: input.minSamples,
      segmentHold: schedule.segmentHold,
    });
    return schedule;
  }

  /** One pass: every running or blocked schedule moves on if its stage is done and healthy. */
  async run(): Promise<void> {
    const rows = await this.deps.db
      .selectFrom('rollout_schedules')
      .selectAll()
      .where('state', 'in', ['running', 'blocked'])
      .execute();
    for (const row of rows) {
      try {
        await this.step(toSchedule(row));
      } catch (error) {
        this.deps.log.error({ err: error, rollout: row.rollout_id }, 'rollout schedule step failed');
      }
    }
  }

  private async step(s: RolloutSchedule): Promise<void> {
    const rollout = await this.deps.registry.getRollout(s.rolloutId);
    if (rollout?.state !== 'active') {
      const state: ScheduleState =
        rollout?.state === 'halted' ? 'halted' : rollout?.state === 'promoted' ? 'completed' : 'ended';
      await this.update(s, { state, note: rollout?.reason ?? `rollout ${rollout?.state ?? 'gone'}` });
      return;
    }
    const next = s.stage + 1;
    if (rollout.shareBps !== (s.fillBps ?? s.stages[s.stage])) {
      // Widened by a step whose record did not land (a crash between the two): catch up.
      if (rollout.shareBps === s.stages[next]) {
        await this.update(s, {
          stage: next,
          stageStartedAt: this.deps.now().toISOString(),
          ...NO_HOLD,
        });
        return;
      }
      await this.update(s, { state: 'ended', note: `share set to ${rollout.shareBps / 100}% by hand` });
      await this.audit(SCHEDULE_ACTOR, rollout, 'rollout.schedule', {
        rolloutId: rollout.id,
        state: 'ended',
        reason: 'the share was changed outside the schedule',
      });
      return;
    }
    if (next >= s.stages.length) {
      await this.update(s, { state: 'completed', note: 'at its last stage' });
      return;
    }
    const last = await this.deps.lastVerdict(rollout.id);
    if (!last) return;
    const short = canaryShortfall(last.verdict, this.deps.minInstalls, this.deps.minPrefixes);
    if (last.verdict.decision !== 'healthy' && !short) return;
    const now = this.deps.now();
    const elapsedMs = now.getTime() - Date.parse(s.stageStartedAt);
    const samples = last.verdict.evidence.canary.inferences;
    const stageSamples = samples - s.stageStartSamples;
    if (elapsedMs < s.minStageMs || stageSamples < s.minSamples) return;
    // A fill step is held like a stage, from its own start.
    if (
      s.fillStartedAt !== null &&
      (now.getTime() - Date.parse(s.fillStartedAt) < s.minStageMs ||
        samples - s.fillStartSamples < s.minSamples)
    )
      return;
    if (s.state === 'blocked' && (await this.deps.service.policyRefusal(rollout, rollout.release))) return;

    let to = s.stages[next]!;
    const heldSince = s.heldSince ?? now.toISOString();
    if (short) {
      // Too few canary installs for any verdict: a fill step to where it should have them, the
      // next stage if that is not below it, never promotion (that takes a healthy verdict).
      const share =
        short.factor === null ? FULL_BPS : Math.min(FULL_BPS, Math.ceil(rollout.shareBps * short.factor));
      if (share < to) to = share;
      if (to === FULL_BPS) {
        const note = `holding at ${rollout.shareBps / 100}%: ${short.text}; promotion takes a healthy verdict`;
        if (s.note !== note) await this.update(s, { note });
        return;
      }
    }
    const pending = short
      ? []
      : pendingSegments(last.verdict, s.segmentHold.minShare, this.deps.minSegmentInstalls);
    const waitedMs = now.getTime() - Date.parse(heldSince);
    let fill = short !== null && to < s.stages[next]!;
    const waitedOut = pending.length > 0 && waitedMs >= s.segmentHold.maxWaitMs;
    if (pending.length > 0 && !waitedOut) {
      const share = fillShare(rollout.shareBps, last.verdict, pending, this.deps.minSegmentInstalls);
      const at = `${rollout.shareBps / 100}%`;
      const list = describePending(pending, this.deps.minSegmentInstalls);
      const waitLeft = Math.ceil((s.segmentHold.maxWaitMs - waitedMs) / 60_000);
      if (s.fillBps !== null) {
        // At the fill step already: its new installs are still reporting. Widened again only
        // once they are judged, or the wait is over (a second fill would chase installs that
        // have not reported yet).
        const note = `holding at ${at} until ${list} (widens without them in ${waitLeft} min)`;
        if (s.note !== note || s.heldSince !== heldSince) await this.update(s, { note, heldSince });
        return;
      }
      // Below the next stage: a fill step. Otherwise the next stage is what these segments need.
      if (share < to) {
        to = share;
        fill = true;
      }
    }

    const details = {
      schedule: {
        stage: next + 1,
        of: s.stages.length,
        fromBps: rollout.shareBps,
        toBps: to,
        stageMinutes: Math.round(elapsedMs / 600) / 100,
        stageSamples,
        verdict: {
          decision: last.verdict.decision,
          judgedAt: last.at,
          canary: last.verdict.evidence.canary,
          control: last.verdict.evidence.control,
        },
        // A fill step: below the next stage, only as far as these segments need for a verdict.
        ...(fill ? { fill: true, stage: s.stage + 1, pending } : {}),
        // Widened on no verdict: the canary had too few installs for one (canaryShortfall).
        ...(short ? { canaryShort: { installs: short.installs, prefixes: short.prefixes } } : {}),
        // Widened although these sizable segments never had a verdict (the hold waited them out).
        ...(waitedOut ? { unjudged: pending, heldMinutes: Math.round(waitedMs / 600) / 100 } : {}),
      },
    };
    try {
      if (to === FULL_BPS) await this.deps.service.promote(SCHEDULE_ACTOR, rollout.id, details);
      else await this.deps.service.setShare(SCHEDULE_ACTOR, rollout.id, to, details);
    } catch (error) {
      if (error instanceof PolicyRefusedError) {
        // Audited by the service (policy.refused); retried only once the policy allows it.
        if (s.state !== 'blocked') await this.update(s, { state: 'blocked', note: error.message });
        return;
      }
      throw error;
    }
    this.deps.log.info({ rollout: rollout.id, from: rollout.shareBps, to, fill }, 'rollout schedule widened');
    if (fill) {
      await this.update(s, {
        fillBps: to,
        fillStartedAt: now.toISOString(),
        fillStartSamples: samples,
        heldSince,
        state: 'running',
        note: `widened to ${to / 100}% (not ${s.stages[next]! / 100}%) until ${
          short
            ? `the canary has the installs a verdict needs (${short.text})`
            : describePending(pending, this.deps.minSegmentInstalls)
        }`,
      });
      return;
    }
    await this.update(s, {
      stage: next,
      stageStartedAt: now.toISOString(),
      stageStartSamples: samples,
      state: to === FULL_BPS ? 'completed' : 'running',
      note:
        to === FULL_BPS
          ? 'promoted'
          : short
            ? `widened to ${to / 100}% without a verdict: ${short.text}`
            : waitedOut
              ? `widened without a verdict on ${pending.map((p) => p.scope).join(', ')} after holding ${Math.round(waitedMs / 60_000)} min`
              : null,
      ...NO_HOLD,
    });
  }

  private async canarySamples(rolloutId: string): Promise<number> {
    return (await this.deps.lastVerdict(rolloutId))?.verdict.evidence.canary.inferences ?? 0;
  }

  /** Writes a change unless another process moved the schedule first (compare-and-set). */
  private async update(s: RolloutSchedule, patch: Partial<RolloutSchedule>): Promise<void> {
    const row = toRow({ ...s, ...patch, updatedAt: this.deps.now().toISOString() });
    const { rollout_id, created_by, stages, min_stage_ms, min_samples, ...set } = row;
    // segment_hold carries the hold's policy (fixed) and state (what moves): written whole.
    await this.deps.db
      .updateTable('rollout_schedules')
      .set(set)
      .where('rollout_id', '=', rollout_id)
      .where('stage', '=', s.stage)
      .where('state', '=', s.state)
      .execute();
  }

  private async audit(actor: Actor, r: RolloutRecord, action: string, details: Record<string, unknown>) {
    await this.deps.registry.appendAudit({
      actor: actor.name,
      action,
      app: r.app,
      channel: r.channel,
      model: r.model,
      details,
    });
  }
}

function toRow(s: RolloutSchedule): Insertable<RolloutSchedulesTable> {
  return {
    rollout_id: s.rolloutId,
    stages: JSON.stringify(s.stages),
    min_stage_ms: s.minStageMs,
    min_samples: s.minSamples,
    stage: s.stage,
    stage_started_at: s.stageStartedAt,
    stage_start_samples: s.stageStartSamples,
    state: s.state,
    note: s.note,
    created_by: s.createdBy,
    updated_at: s.updatedAt,
    segment_hold: JSON.stringify({
      ...s.segmentHold,
      fillBps: s.fillBps,
      fillStartedAt: s.fillStartedAt,
      fillStartSamples: s.fillStartSamples,
      heldSince: s.heldSince,
    }),
  };
}

function toSchedule(r: Selectable<RolloutSchedulesTable>): RolloutSchedule {
  const hold = JSON.parse(r.segment_hold || '{}') as Partial<SegmentHold & HoldState>;
  return {
    rolloutId: r.rollout_id,
    stages: JSON.parse(r.stages) as number[],
    minStageMs: Number(r.min_stage_ms),
    minSamples: Number(r.min_samples),
    stage: Number(r.stage),
    stageStartedAt: r.stage_started_at,
    stageStartSamples: Number(r.stage_start_samples),
    state: r.state as ScheduleState,
    note: r.note,
    createdBy: r.created_by,
    updatedAt: r.updated_at,
    segmentHold: {
      minShare: hold.minShare ?? DEFAULT_SEGMENT_MIN_SHARE,
      maxWaitMs: hold.maxWaitMs ?? DEFAULT_SEGMENT_WAIT_STAGES * Number(r.min_stage_ms),
    },
    fillBps: hold.fillBps ?? null,
    fillStartedAt: hold.fillStartedAt ?? null,
    fillStartSamples: hold.fillStartSamples ?? 0,
    heldSince: hold.heldSince ?? null,
  };
}

/** A canary too small for any verdict while its control is not (canaryShortfall). */
export interface CanaryShortfall {
  installs: number;
  prefixes: number;
  /** How many times the current share should give it FILL_MARGIN x what it needs; null: no estimate (no installs). */
  factor: number | null;
  text: string;
}

/**
 * A verdict of `insufficient-data` only because the canary arm has too few installs or networks
 * (the control has its own): its installs are fixed by their buckets, so holding the stage never
 * gives it more (1% of 1,000 devices is ~10 installs for good, below the 30 a verdict needs, and a
 * schedule waiting for a healthy verdict there never moved). The schedule widens it as it widens
 * for a segment: by the factor at which the canary's installs and networks, growing with the
 * share, should reach FILL_MARGIN x what a verdict needs. Null when the verdict is anything else.
 */
export function canaryShortfall(
  verdict: CanaryVerdict,
  minInstalls: number,
  minPrefixes: number,
): CanaryShortfall | null {
  const sources = verdict.evidence.sources;
  if (verdict.decision !== 'insufficient-data' || !sources) return null;
  const { canary, control } = sources;
  if (control.installs < minInstalls || control.prefixes < minPrefixes) return null;
  if (canary.installs >= minInstalls && canary.prefixes >= minPrefixes) return null;
  const factor =
    canary.installs === 0 || canary.prefixes === 0
      ? null
      : Math.max(
          1,
          (minInstalls * FILL_MARGIN) / canary.installs,
          (minPrefixes * FILL_MARGIN) / canary.prefixes,
        );
  return {
    installs: canary.installs,
    prefixes: canary.prefixes,
    factor,
    text: `the canary has ${canary.installs} installs on ${canary.prefixes} networks, a verdict needs ${minInstalls} on ${minPrefixes}`,
  };
}

/**
 * Sizable segments (at least `minShare` of the installs both arms counted) that the verdict could
 * not judge on their own: fewer than `minInstalls` canary installs (they were merged into 'other').
 * 'other' and 'unknown' are not segments an operator can act on and are left out.
 */
export function pendingSegments(
  verdict: CanaryVerdict,
  minShare: number,
  minInstalls: number,
): PendingSegment[] {
  const raw = verdict.evidence.segmentInstalls;
  if (!raw || minShare <= 0) return [];
  const out: PendingSegment[] = [];
  for (const [dimension, values] of Object.entries(raw)) {
    const total = Object.values(values).reduce((n, v) => n + v.canary + v.control, 0);
    if (total === 0) continue;
    for (const [value, { canary, control }] of Object.entries(values)) {
      if (value === 'other' || value === 'unknown') continue;
      const share = (canary + control) / total;
      if (share < minShare || canary >= minInstalls) continue;
      // Every install is in it (a fleet all on WASM): the verdict over all installs judged it.
      if (canary + control === total) continue;
      // Its installs in the control are short too: widening the canary does not give it a verdict.
      if (control < minInstalls) continue;
      out.push({
        scope: `${dimension}=${value}`,
        share: Math.round(share * 1000) / 1000,
        canaryInstalls: canary,
      });
    }
  }
  // One segment per set of installs is enough to name (browser=firefox and browserMajor=133).
  const seen = new Set<string>();
  return out
    .sort((a, b) => a.canaryInstalls - b.canaryInstalls || a.scope.localeCompare(b.scope))
    .filter((p) => {
      const key = `${p.share}:${p.canaryInstalls}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

/**
 * The share at which every pending segment should have `FILL_MARGIN` times the canary installs
 * a verdict needs: a segment with c canary installs and share p of the fleet gains p x C (the
 * canary's installs) for each further multiple of the current share. In basis points, rounded up.
 */
export function fillShare(
  shareBps: number,
  verdict: CanaryVerdict,
  pending: PendingSegment[],
  minInstalls: number,
): number {
  const canaryInstalls = verdict.evidence.sources?.canary.installs ?? 0;
  const target = Math.ceil(minInstalls * FILL_MARGIN);
  let factor = 1;
  for (const p of pending) {
    const perShare = p.share * canaryInstalls;
    if (perShare <= 0) return FULL_BPS;
    factor = Math.max(factor, 1 + (target - p.canaryInstalls) / perShare);
  }
  return Math.min(FULL_BPS, Math.ceil(shareBps * factor));
}

function describePending(pending: PendingSegment[], minInstalls: number): string {
  const each = pending.map(
    (p) => `${p.scope} (${(p.share * 100).toFixed(1)}% of installs, ${p.canaryInstalls} on the canary)`,
  );
  return `${each.join(', ')} ${pending.length === 1 ? 'has' : 'have'} the ${minInstalls} canary installs a segment verdict needs`;
}
