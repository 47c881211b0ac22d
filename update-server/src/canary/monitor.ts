import { type RolloutArm, rolloutArms } from '@edgeship/protocol';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Counter, type Registry as PromRegistry } from 'prom-client';
import { ProductionAlerts } from '../alerts/production-alerts.ts';
import type { LeaderTask } from '../cluster/leader.ts';
import { InvalidStateError } from '../http/api-errors.ts';
import type { RegistryService } from '../registry/service.ts';
import type { Database } from '../storage/schema.ts';
import type { RegistryStore, RolloutRecord } from '../storage/types.ts';
import type { TelemetryService } from '../telemetry/service.ts';
import { type CanaryPolicy, type CanaryVerdict, DEFAULT_CANARY_POLICY } from './analysis.ts';
import {
  CanaryEvidenceStore,
  DEFAULT_EVIDENCE_CAPS,
  type EvidenceCaps,
  type InstallEvidence,
  treatmentArm,
} from './evidence.ts';
import { chooseExclusion, withoutExcluded } from './exclusion.ts';
import { LoopTimers } from './loop-timers.ts';
import { type ArmReleases, analyzeEvidence } from './robust.ts';
import { RolloutScheduler } from './schedule.ts';
import {
  DEFAULT_SHADOW_POLICY,
  type ShadowPolicy,
  type ShadowVerdict,
  shadowEvidence,
  shadowVerdict,
} from './shadow.ts';
import { type StoredVerdict, VerdictStore } from './verdicts.ts';
import type { WebhookOptions } from './webhook.ts';
import { type OutboxOptions, WebhookOutbox } from './webhook-outbox.ts';

export interface CanaryOptions {
  policy?: Partial<CanaryPolicy>;
  /** When a shadow candidate is ready for a canary (canary/shadow.ts). */
  shadow?: Partial<ShadowPolicy>;
  /** What one install and one network may add to a rollout's evidence (canary/evidence.ts). */
  caps?: Partial<EvidenceCaps>;
  /** Every active canary is analysed at least this often. */
  intervalMs?: number;
  /** After telemetry for a model arrives, its canary is analysed at most this often. */
  throttleMs?: number;
  /** Called (POST, JSON) on an automatic halt, a shadow verdict change, and production alerts (alerts/). */
  webhookUrl?: string;
  /** Attempts, backoff and signing secret of the durable outbox (webhook-outbox.ts). */
  webhook?: WebhookOptions & Pick<OutboxOptions, 'maxDelayMs' | 'pollMs'>;
}

export const CANARY_ACTOR = { name: 'canary-analysis' };

/** After a pass on the timer or on telemetry, wait at least this many times its duration. */
const BUSY_PAUSE = 4;
/** On its own passes, the monitor judges a rollout again once this share of its installs has new evidence. */
const LOOK_AFTER_SHARE = 0.05;

export interface CanaryDeps {
  db: Kysely<Database>;
  registry: RegistryStore;
  service: RegistryService;
  telemetry: TelemetryService;
  log: Logger;
  options?: CanaryOptions;
}

export type LastVerdict = StoredVerdict<CanaryVerdict>;

/**
 * Runs the canary analysis on every active canary rollout: shortly after telemetry for its model
 * arrives (throttled) and on a timer. A regression halts the rollout through RegistryService.halt,
 * so the halt, its reasons and its evidence land in the audit trail in the same transaction as the
 * new manifest; the webhook follows, off the request path. It runs on the leader only
 * (cluster/leader.ts starts and pauses it): with several processes on one PostgreSQL one monitor
 * judges, and its verdicts land in the database (canary/verdicts.ts) for every process to show.
 * Were two ever to overlap (a leader that lost its session), the first halt wins and the other
 * finds the rollout already halted.
 */
export class CanaryMonitor implements LeaderTask {
  readonly name = 'canary-monitor';
  readonly policy: CanaryPolicy;
  readonly shadowPolicy: ShadowPolicy;
  /** What counts as evidence; the server runs `evidence.record` inside each ingest transaction. */
  readonly evidence: CanaryEvidenceStore;
  private readonly intervalMs: number;
  private readonly throttleMs: number;
  /** The timer, and the throttled pass after telemetry (its wake-up). */
  private readonly timers = new LoopTimers();
  private lastRun = 0;
  private running: Promise<void> | null = null;
  private rerun = false;
  private stopped = false;
  /** Judging on its timer and on telemetry: between start() and pause(), on the leader. */
  private active = false;
  /** Events stored by a pass but not yet in the outbox's table (enqueue is awaited by settled()). */
  private readonly webhooks = new Set<Promise<unknown>>();
  /** Webhook events, stored before they are sent, delivered at least once by the leader. */
  readonly outbox: WebhookOutbox;
  private readonly verdicts: VerdictStore;
  private readonly runs = { inc: () => {} };
  private readonly extraPasses: Array<readonly [string, () => Promise<void>]> = [];
  /** After each pass: alerts on production releases (alerts/) and rollout schedules (schedule.ts). */
  readonly alerts: ProductionAlerts;
  readonly schedules: RolloutScheduler;
  /** The last verdict per active rollout, its releases and the rows changed since (see judge). */
  private readonly judged = new Map<string, { key: string; changed: number; verdict: CanaryVerdict }>();
  private readonly saved = new WeakSet<CanaryVerdict>();
  /** An explicit run() asked for a pass that judges on every change (see judge). */
  private forced = false;
  /** When the last pass ended and how long it took (see notify). */
  private lastEnd = 0;
  private lastCostMs = 0;
  /** Telemetry arrived during a pass: schedule one after it. */
  private pending = false;

  constructor(private readonly deps: CanaryDeps) {
    const opts = deps.options ?? {};
    this.policy = { ...DEFAULT_CANARY_POLICY, ...opts.policy };
    this.shadowPolicy = { ...DEFAULT_SHADOW_POLICY, ...opts.shadow };
    this.evidence = new CanaryEvidenceStore(deps.db, { ...DEFAULT_EVIDENCE_CAPS, ...opts.caps });
    this.intervalMs = opts.intervalMs ?? 30_000;
    this.throttleMs = opts.throttleMs ?? 2_000;
    this.verdicts = new VerdictStore(deps.db);
    this.outbox = new WebhookOutbox(deps.db, opts.webhookUrl, deps.log, opts.webhook);
    const send = (event: Record<string, unknown>) => this.send(event);
    this.alerts = new ProductionAlerts({ ...deps, send });
    this.schedules = new RolloutScheduler({
      ...deps,
      lastVerdict: (id) => this.lastVerdict(id),
      now: deps.telemetry.now,
      minSegmentInstalls: this.policy.minSegmentInstalls,
      minInstalls: this.policy.minInstalls,
      minPrefixes: this.policy.minPrefixes,
    });
  }

  /** A pass run after the others on every monitor pass, on the leader only (experiments use it). */
  addPass(what: string, pass: () => Promise<void>): void {
    this.extraPasses.push([what, pass]);
  }

  /** Registers `edgeship_canary_runs_total` (passes over the active canaries, on this process). */
  attachMetrics(registry: PromRegistry): void {
    const counter = new Counter({
      name: 'edgeship_canary_runs_total',
      help: 'Canary analysis passes run by this process (only the leader runs them)',
      registers: [registry],
    });
    this.runs.inc = () => counter.inc();
    this.outbox.attachMetrics(registry);
  }

  /** Starts judging on the timer and on telemetry (this process became the leader). */
  start(): void {
    if (this.stopped || this.active) return;
    this.active = true;
    this.timers.every(this.intervalMs, () => this.onTimer());
    this.outbox.start();
  }

  /** Stops judging on its own (no longer the leader) and waits for a pass under way. */
  async pause(): Promise<void> {
    this.active = false;
    this.timers.clear();
    await this.running;
    await Promise.allSettled([...this.webhooks]);
    await this.outbox.pause();
  }

  /** The timer: a pass now, unless one is under way or the pause after the last is not over. */
  private onTimer(): void {
    if (this.running || Date.now() < this.lastEnd + BUSY_PAUSE * this.lastCostMs) return;
    void this.run(true);
  }

  /**
   * Telemetry arrived: analyse soon, but not more often than the throttle allows, and (as on the
   * timer) with a pause after each pass of at least BUSY_PAUSE times its duration, so that the
   * monitor runs at most a fifth of the time however large the rollouts grow (a verdict costs
   * the rollout's installs). Looking less often leaves the verdicts valid: their p-values hold at
   * every look, whatever the schedule (install-stats.ts).
   */
  notify(): void {
    if (this.stopped || !this.active || this.timers.waking) return;
    if (this.running) {
      this.pending = true;
      return;
    }
    const wait = Math.max(
      0,
      this.lastRun + this.throttleMs - Date.now(),
      this.lastEnd + BUSY_PAUSE * this.lastCostMs - Date.now(),
    );
    this.timers.wakeAfter(wait, () => {
      if (this.running)
        this.pending = true; // the timer started one meanwhile
      else void this.run(true);
    });
  }

  /** The monitor's last verdict on a rollout, whichever process judged it. */
  lastVerdict(rolloutId: string): Promise<LastVerdict | undefined> {
    return this.verdicts.last<CanaryVerdict>(rolloutId, 'canary');
  }

  /** One pass over the active canaries (runs are serialised; a request during one queues one more). */
  run(paced = false): Promise<void> {
    if (!paced) this.forced = true;
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.rerun = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.rerun = false;
        this.lastRun = Date.now();
        this.runs.inc();
        const paced = !this.forced;
        this.forced = false;
        for (const [what, pass] of [
          ['canary analysis', () => this.analyseAll(paced)],
          ['production alerts', () => this.alerts.run()],
          ['rollout schedules', () => this.schedules.run()],
          ...this.extraPasses,
        ] as const) {
          try {
            if (!this.stopped) await pass();
          } catch (error) {
            this.deps.log.error({ err: error }, `${what} failed`);
          }
        }
        this.lastEnd = Date.now();
        this.lastCostMs = this.lastEnd - this.lastRun;
      } while (this.rerun && !this.stopped);
    })().finally(() => {
      this.running = null;
      if (this.pending) {
        this.pending = false;
        this.notify();
      }
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.pause();
  }

  /** Waits for the events of past passes to be stored and for the delivery attempts under way. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.webhooks]);
    await this.outbox.settled();
  }

  /** The verdict for one rollout on the data so far (also what the fleet API shows). */
  analyse(rollout: RolloutRecord): Promise<CanaryVerdict | null> {
    return this.judge(rollout, false);
  }

  /**
   * The verdict is a function of the evidence, the two releases and the policy: while no row has
   * changed since the last verdict, it stands. On the monitor's own passes (`paced`) it also
   * stands until LOOK_AFTER_SHARE of the rollout's installs have new evidence: a verdict costs
   * every install of the rollout, so looks follow the data (a bounded number of verdicts per
   * round of reports, whatever the fleet's size) rather than the clock. An explicit run() or the
   * fleet view judge on every change.
   */
  private async judge(rollout: RolloutRecord, paced: boolean): Promise<CanaryVerdict | null> {
    if (!rollout.control) return null;
    const view = await this.evidence.view(rollout.id, rollout.state === 'active');
    // The exclusions change what is judged, so they are part of what a standing verdict stood on.
    const key = `${JSON.stringify(rolloutArms(rollout))}\u0000${rollout.control}\u0000${JSON.stringify(rollout.excludedSegments ?? [])}`;
    const known = this.judged.get(rollout.id);
    if (known?.key === key) {
      known.changed += view.changed;
      if (known.changed === 0) return known.verdict;
      if (paced && known.changed < LOOK_AFTER_SHARE * view.list.length) return known.verdict;
    }
    for (const id of this.judged.keys()) if (!this.evidence.keeps(id)) this.judged.delete(id);
    const [canary, control] = await Promise.all([
      this.releaseOf(rollout.model, rollout.release),
      this.releaseOf(rollout.model, rollout.control),
    ]);
    // Segments the rollout excludes are no longer in it: the rest is judged without them.
    const rows = withoutExcluded(view.list, rollout.excludedSegments);
    const verdict = rollout.arms
      ? await this.judgeArms(rollout.model, rollout.arms, rows, control)
      : analyzeEvidence(rows, canary, control, this.policy);
    if (rollout.state === 'active') this.judged.set(rollout.id, { key, changed: 0, verdict });
    return verdict;
  }

  /**
   * A multi-arm rollout's guardrails: each arm against the control, on the same rules, at
   * alpha / arms (Bonferroni, so that more arms do not mean more false halts). The verdict is the
   * worst arm's (halt, then insufficient data), naming it; a halt stops every arm (the arms share
   * one split of the buckets: removing one would move the others' devices between arms).
   */
  private async judgeArms(
    model: string,
    arms: readonly RolloutArm[],
    rows: readonly InstallEvidence[],
    control: ArmReleases,
  ): Promise<CanaryVerdict> {
    const policy = { ...this.policy, alpha: this.policy.alpha / arms.length };
    const verdicts = await Promise.all(
      arms.map(async (arm, i) => {
        const label = treatmentArm(i);
        const armRows = rows
          .filter((r) => r.arm === 'control' || r.arm === label)
          .map((r) => (r.arm === label ? { ...r, arm: 'canary' as const } : r));
        const v = analyzeEvidence(armRows, await this.releaseOf(model, arm.release), control, policy);
        return { ...v, release: arm.release, reasons: v.reasons.map((r) => `${arm.release}: ${r}`) };
      }),
    );
    const rank = { halt: 0, 'insufficient-data': 1, healthy: 2 } as const;
    const worst = verdicts.reduce((a, b) => (rank[b.decision] < rank[a.decision] ? b : a));
    return {
      ...worst,
      arms: verdicts.map((v) => ({ release: v.release, decision: v.decision, reasons: v.reasons })),
    };
  }

  /** Whether a shadow candidate is ready for a canary, on its evidence since the rollout began. */
  async analyseShadow(rollout: RolloutRecord): Promise<ShadowVerdict> {
    return shadowVerdict(await shadowEvidence(this.deps.telemetry, rollout), this.shadowPolicy);
  }

  private async releaseOf(model: string, version: string): Promise<ArmReleases> {
    const spec = await this.deps.telemetry.catalog.monitoring(model, version);
    return {
      version,
      references: Object.fromEntries((spec?.features ?? []).map((f) => [f.name, f.reference])),
    };
  }

  private async analyseAll(paced: boolean): Promise<void> {
    const rollouts = await this.deps.registry.listRollouts({ states: ['active'] });
    const active = new Set(rollouts.map((r) => r.id));
    this.evidence.keepOnly(active);
    for (const id of this.judged.keys()) if (!active.has(id)) this.judged.delete(id);
    for (const rollout of rollouts) {
      if (this.stopped) return;
      if (rollout.mode === 'shadow') await this.judgeShadow(rollout);
      if (rollout.mode !== 'canary' || rollout.shareBps === 0) continue;
      const verdict = await this.judge(rollout, paced);
      if (!verdict) continue;
      if (!this.saved.has(verdict)) {
        // A verdict that stands (see judge) is saved once.
        await this.verdicts.save(rollout.id, 'canary', verdict);
        this.saved.add(verdict);
      }
      if (verdict.decision === 'halt' && !(await this.excludeInstead(rollout, verdict))) {
        await this.halt(rollout, verdict);
      }
    }
  }

  /** A shadow verdict that changed (to ready, or to not ready) is logged and sent as a webhook event. */
  private async judgeShadow(rollout: RolloutRecord): Promise<void> {
    const verdict = await this.analyseShadow(rollout);
    if (verdict.decision === 'insufficient-data') return;
    // Persisted, so a new leader after failover does not announce a decision again.
    const last = await this.verdicts.last<ShadowVerdict>(rollout.id, 'shadow');
    if (last?.verdict.decision === verdict.decision) return;
    await this.verdicts.save(rollout.id, 'shadow', verdict);
    this.deps.log.info(
      { rollout: rollout.id, decision: verdict.decision, reasons: verdict.reasons },
      'shadow verdict',
    );
    this.send({
      event: 'rollout.shadow-verdict',
      at: new Date().toISOString(),
      rollout,
      decision: verdict.decision,
      reasons: verdict.reasons,
      evidence: verdict.evidence,
    });
  }

  private send(event: Record<string, unknown>): void {
    const stored = this.outbox.enqueue(event).catch((error: unknown) => {
      this.deps.log.error({ err: error, event: event.event }, 'webhook event not stored');
    });
    this.webhooks.add(stored);
    void stored.finally(() => this.webhooks.delete(stored));
  }

  /**
   * Under the channel's `segmentRegression: 'exclude'` policy, a regression confined to segments
   * excludes them from the rollout instead of halting it (canary/exclusion.ts). False: halt.
   */
  private async excludeInstead(rollout: RolloutRecord, verdict: CanaryVerdict): Promise<boolean> {
    const policy = await this.deps.registry.getChannelPolicy(rollout.app, rollout.channel);
    // A multi-arm rollout halts: an exclusion is judged on one treatment against the control.
    if (policy?.policy.segmentRegression !== 'exclude' || !rollout.control || rollout.arms) return false;
    const [rows, canary, control] = await Promise.all([
      this.evidence.evidence(rollout.id),
      this.releaseOf(rollout.model, rollout.release),
      this.releaseOf(rollout.model, rollout.control),
    ]);
    const already = rollout.excludedSegments ?? [];
    const exclusion = chooseExclusion(
      withoutExcluded(rows, already),
      verdict,
      already,
      (rest) => analyzeEvidence(rest, canary, control, this.policy),
      this.policy,
    );
    if (!exclusion) return false;
    const names = exclusion.segments.map((s) => `${s.dimension}=${s.value}`).join(', ');
    const reason = `canary analysis: excluded ${names}: ${verdict.reasons.join('; ')}`.slice(0, 500);
    const evidence = { ...verdict.evidence, reasons: verdict.reasons, rest: exclusion.rest.decision };
    let excluded: RolloutRecord;
    try {
      excluded = await this.deps.service.excludeSegments(
        CANARY_ACTOR,
        rollout.id,
        exclusion.segments,
        reason,
        evidence,
      );
    } catch (error) {
      if (error instanceof InvalidStateError) return true; // halted or changed meanwhile
      throw error;
    }
    await this.verdicts.save(rollout.id, 'canary', exclusion.rest);
    this.deps.log.warn(
      { rollout: rollout.id, release: rollout.release, excluded: names },
      'canary segments excluded',
    );
    this.send({
      event: 'rollout.segments-excluded',
      at: excluded.updatedAt,
      rollout: excluded,
      excluded: exclusion.segments,
      reason,
      evidence,
    });
    return true;
  }

  private async halt(rollout: RolloutRecord, verdict: CanaryVerdict): Promise<void> {
    const reason = `canary analysis: ${verdict.reasons.join('; ')}`.slice(0, 500);
    const evidence = { ...verdict.evidence, reasons: verdict.reasons, policy: this.policy };
    let halted: RolloutRecord;
    try {
      halted = await this.deps.service.halt(CANARY_ACTOR, rollout.id, reason, evidence);
    } catch (error) {
      // Halted, promoted or replaced meanwhile (by an operator or another process): nothing to do.
      if (error instanceof InvalidStateError) return;
      throw error;
    }
    this.deps.log.warn(
      { rollout: rollout.id, release: rollout.release, reasons: verdict.reasons },
      'canary halted',
    );
    this.send({
      event: 'rollout.halted',
      at: halted.updatedAt,
      rollout: { ...halted, shareBpsBefore: rollout.shareBps },
      reason,
      evidence,
    });
  }
}
