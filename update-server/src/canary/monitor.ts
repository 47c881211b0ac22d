import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Counter, type Registry as PromRegistry } from 'prom-client';
import type { LeaderTask } from '../cluster/leader.ts';
import { InvalidStateError } from '../http/api-errors.ts';
import type { RegistryService } from '../registry/service.ts';
import type { Database } from '../storage/schema.ts';
import type { RegistryStore, RolloutRecord } from '../storage/types.ts';
import type { TelemetryService } from '../telemetry/service.ts';
import { type CanaryPolicy, type CanaryVerdict, DEFAULT_CANARY_POLICY } from './analysis.ts';
import { CanaryEvidenceStore, DEFAULT_EVIDENCE_CAPS, type EvidenceCaps } from './evidence.ts';
import { type ArmReleases, analyzeEvidence } from './robust.ts';
import {
  DEFAULT_SHADOW_POLICY,
  type ShadowPolicy,
  type ShadowVerdict,
  shadowEvidence,
  shadowVerdict,
} from './shadow.ts';
import { type StoredVerdict, VerdictStore } from './verdicts.ts';
import { deliverWebhook, type WebhookOptions } from './webhook.ts';

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
  /** Called (POST, JSON) when a rollout is halted automatically, and when a shadow verdict changes. */
  webhookUrl?: string;
  webhook?: WebhookOptions;
}

export const CANARY_ACTOR = { name: 'canary-analysis' };

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
  private timer: NodeJS.Timeout | null = null;
  private throttled: NodeJS.Timeout | null = null;
  private lastRun = 0;
  private running: Promise<void> | null = null;
  private rerun = false;
  private stopped = false;
  /** Judging on its timer and on telemetry: between start() and pause(), on the leader. */
  private active = false;
  private readonly webhooks = new Set<Promise<unknown>>();
  private readonly verdicts: VerdictStore;
  private readonly runs = { inc: () => {} };

  constructor(private readonly deps: CanaryDeps) {
    const opts = deps.options ?? {};
    this.policy = { ...DEFAULT_CANARY_POLICY, ...opts.policy };
    this.shadowPolicy = { ...DEFAULT_SHADOW_POLICY, ...opts.shadow };
    this.evidence = new CanaryEvidenceStore(deps.db, { ...DEFAULT_EVIDENCE_CAPS, ...opts.caps });
    this.intervalMs = opts.intervalMs ?? 30_000;
    this.throttleMs = opts.throttleMs ?? 2_000;
    this.verdicts = new VerdictStore(deps.db);
  }

  /** Registers `edgeship_canary_runs_total` (passes over the active canaries, on this process). */
  attachMetrics(registry: PromRegistry): void {
    const counter = new Counter({
      name: 'edgeship_canary_runs_total',
      help: 'Canary analysis passes run by this process (only the leader runs them)',
      registers: [registry],
    });
    this.runs.inc = () => counter.inc();
  }

  /** Starts judging on the timer and on telemetry (this process became the leader). */
  start(): void {
    if (this.stopped || this.active) return;
    this.active = true;
    this.timer = setInterval(() => void this.run(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops judging on its own (no longer the leader) and waits for a pass under way. */
  async pause(): Promise<void> {
    this.active = false;
    if (this.timer) clearInterval(this.timer);
    if (this.throttled) clearTimeout(this.throttled);
    this.timer = null;
    this.throttled = null;
    await this.running;
  }

  /** Telemetry arrived: analyse soon, but not more often than the throttle allows. */
  notify(): void {
    if (this.stopped || !this.active || this.throttled) return;
    const wait = Math.max(0, this.lastRun + this.throttleMs - Date.now());
    this.throttled = setTimeout(() => {
      this.throttled = null;
      void this.run();
    }, wait);
    this.throttled.unref();
  }

  /** The monitor's last verdict on a rollout, whichever process judged it. */
  lastVerdict(rolloutId: string): Promise<LastVerdict | undefined> {
    return this.verdicts.last<CanaryVerdict>(rolloutId, 'canary');
  }

  /** One pass over the active canaries (runs are serialised; a request during one queues one more). */
  run(): Promise<void> {
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
        try {
          await this.analyseAll();
        } catch (error) {
          this.deps.log.error({ err: error }, 'canary analysis failed');
        }
      } while (this.rerun && !this.stopped);
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.pause();
  }

  /** Waits for webhook deliveries under way (tests and graceful shutdown). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.webhooks]);
  }

  /** The verdict for one rollout on the data so far (also what the fleet API shows). */
  async analyse(rollout: RolloutRecord): Promise<CanaryVerdict | null> {
    if (!rollout.control) return null;
    const [rows, canary, control] = await Promise.all([
      this.evidence.evidence(rollout.id),
      this.releaseOf(rollout.model, rollout.release),
      this.releaseOf(rollout.model, rollout.control),
    ]);
    return analyzeEvidence(rows, canary, control, this.policy);
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

  private async analyseAll(): Promise<void> {
    const rollouts = await this.deps.registry.listRollouts({ states: ['active'] });
    for (const rollout of rollouts) {
      if (this.stopped) return;
      if (rollout.mode === 'shadow') await this.judgeShadow(rollout);
      if (rollout.mode !== 'canary' || rollout.shareBps === 0) continue;
      const verdict = await this.analyse(rollout);
      if (!verdict) continue;
      await this.verdicts.save(rollout.id, 'canary', verdict);
      if (verdict.decision === 'halt') await this.halt(rollout, verdict);
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
    const url = this.deps.options?.webhookUrl;
    if (!url) return;
    const delivery = deliverWebhook(url, event, this.deps.log, this.deps.options?.webhook).catch(() => false);
    this.webhooks.add(delivery);
    void delivery.finally(() => this.webhooks.delete(delivery));
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
