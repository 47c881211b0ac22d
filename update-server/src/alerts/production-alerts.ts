import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { auditEntry } from '../registry/service.ts';
import type { Database } from '../storage/schema.ts';
import type { RegistryStore } from '../storage/types.ts';
import { emptyValues, mergeValues } from '../telemetry/aggregate.ts';
import type { TelemetryService } from '../telemetry/service.ts';
import {
  type AlertConfig,
  type AlertRule,
  DEFAULT_ALERT_CONFIG,
  judge,
  type LabelledCounts,
  labelledCounts,
  measure,
  RETRAIN_RULE,
} from './rules.ts';
import { type AlertConfigRecord, type AlertEpisode, AlertStore } from './store.ts';

export interface ProductionAlertsDeps {
  db: Kysely<Database>;
  registry: RegistryStore;
  telemetry: TelemetryService;
  log: Logger;
  /** Delivers a webhook event (the canary monitor's: canary/webhook.ts, retried). */
  send: (event: Record<string, unknown>) => void;
  /** Where accuracy's labelled counts come from (rules.ts, labelledCounts). */
  labelled?: LabelledCounts;
}

/**
 * Alerts on what each channel serves outside any rollout (its production release): on every pass
 * of the canary monitor, on the leader, each channel with an alert configuration has each of its
 * models' production release judged over the trailing window against the channel's thresholds.
 * A rule crossing its threshold opens an episode and sends `alert.fired` once; the episode closes
 * with one `alert.resolved` when the rule is back under it (too little data changes nothing).
 * Drift firing for `retrainAfterMinutes` sends `retrain.suggested`, once per drift episode.
 * Episodes live in the database (alerts/store.ts), so a restart or a new leader does not repeat
 * them. Times are the telemetry clock's (the server's `telemetryClock`, which tests move).
 */
export class ProductionAlerts {
  readonly store: AlertStore;
  private readonly labelled: LabelledCounts;

  constructor(private readonly deps: ProductionAlertsDeps) {
    this.store = new AlertStore(deps.db);
    this.labelled = deps.labelled ?? labelledCounts;
  }

  /** The configuration with its defaults filled in. */
  static effective(config: Partial<AlertConfig> & Pick<AlertConfig, 'thresholds'>): AlertConfig {
    return { ...DEFAULT_ALERT_CONFIG, ...config };
  }

  /** Stores a channel's alert configuration, audited (`channel.alerts`, before and after). */
  async setConfig(
    actor: { name: string },
    app: string,
    channel: string,
    config: AlertConfig,
  ): Promise<AlertConfigRecord> {
    const before = await this.store.config(app, channel);
    const record = { app, channel, config, updatedBy: actor.name, updatedAt: new Date().toISOString() };
    await this.store.putConfig(record);
    await this.deps.registry.appendAudit(
      auditEntry(actor, 'channel.alerts', { app, channel }, { from: before?.config ?? null, to: config }),
    );
    return record;
  }

  /** One pass over every configured channel. */
  async run(): Promise<void> {
    for (const record of await this.store.configs()) {
      const models = await this.deps.registry.listChannelModels(record.app, record.channel);
      const episodes = await this.store.episodes(record.app, record.channel);
      for (const { model, production } of models) {
        if (!production) continue;
        await this.evaluate(
          record,
          model,
          production,
          episodes.filter((e) => e.model === model),
        );
      }
    }
  }

  private async evaluate(
    record: AlertConfigRecord,
    model: string,
    version: string,
    episodes: AlertEpisode[],
  ): Promise<void> {
    const { app, channel } = record;
    const config = ProductionAlerts.effective(record.config);
    const now = this.deps.telemetry.now();
    const at = now.toISOString();
    const sinceMs = now.getTime() - config.windowMinutes * 60_000;
    const rows = await this.deps.telemetry.store.aggregates({
      app,
      channel,
      model,
      versions: [version],
      role: 'active',
      since: Math.floor(sinceMs / 1000),
    });
    const sum = emptyValues();
    for (const [, values] of rows) mergeValues(sum, values);
    const [spec, release] = await Promise.all([
      this.deps.telemetry.catalog.monitoring(model, version),
      this.deps.registry.getRelease(model, version),
    ]);
    const measures = measure(sum, spec, release?.metrics.accuracy ?? null, this.labelled);
    const evidence = {
      release: version,
      window: { since: new Date(sinceMs).toISOString(), until: at, minutes: config.windowMinutes },
      measures,
    };
    const last = new Map(episodes.map((e) => [e.rule, e]));
    const ref = { app, channel, model };

    const judgements = judge(config, measures);
    for (const j of judgements) {
      const open = last.get(j.rule) ?? null;
      const rule = { rule: j.rule, threshold: j.threshold, value: j.value, samples: j.samples };
      if (j.status === 'breach' && open?.state !== 'firing') {
        const fired: AlertEpisode = {
          ...ref,
          rule: j.rule,
          episode: randomUUID(),
          state: 'firing',
          version,
          firedAt: at,
          resolvedAt: null,
          evidence: { ...evidence, ...rule },
        };
        if (!(await this.store.transition(open, fired))) continue;
        last.set(j.rule, fired);
        this.deps.log.warn({ ...ref, version, ...rule }, 'alert fired');
        this.deps.send({ event: 'alert.fired', at, alert: summary(fired, rule), evidence: fired.evidence });
      } else if (j.status === 'ok' && open?.state === 'firing') {
        const resolved: AlertEpisode = {
          ...open,
          state: 'resolved',
          version,
          resolvedAt: at,
          evidence: { ...evidence, ...rule },
        };
        if (!(await this.store.transition(open, resolved))) continue;
        last.set(j.rule, resolved);
        this.deps.log.info({ ...ref, version, ...rule }, 'alert resolved');
        this.deps.send({
          event: 'alert.resolved',
          at,
          alert: summary(resolved, rule),
          evidence: resolved.evidence,
        });
        const retrain = last.get(RETRAIN_RULE);
        if (j.rule === 'drift' && retrain?.episode === open.episode && retrain.state === 'firing') {
          // Quietly: the suggestion was made; the next drift episode may make it again.
          await this.store.transition(retrain, { ...retrain, state: 'resolved', resolvedAt: at });
        }
      }
    }

    // A rule switched off while firing resolves (its last measures as evidence), so nothing stays open.
    const judged = new Set(judgements.map((j) => j.rule));
    for (const open of [...last.values()]) {
      if (open.state !== 'firing' || open.rule === RETRAIN_RULE || judged.has(open.rule as AlertRule))
        continue;
      const resolved: AlertEpisode = {
        ...open,
        state: 'resolved',
        resolvedAt: at,
        evidence: { ...evidence, rule: open.rule, switchedOff: true },
      };
      if (!(await this.store.transition(open, resolved))) continue;
      last.set(open.rule, resolved);
      this.deps.send({
        event: 'alert.resolved',
        at,
        alert: summary(resolved, { threshold: null, value: null, samples: 0 }),
        evidence: resolved.evidence,
      });
    }

    const drift = last.get('drift');
    const retrain = last.get(RETRAIN_RULE) ?? null;
    if (
      drift?.state === 'firing' &&
      now.getTime() - Date.parse(drift.firedAt) >= config.retrainAfterMinutes * 60_000 &&
      retrain?.episode !== drift.episode
    ) {
      const suggested: AlertEpisode = {
        ...ref,
        rule: RETRAIN_RULE,
        episode: drift.episode,
        state: 'firing',
        version,
        firedAt: at,
        resolvedAt: null,
        evidence: { ...evidence, driftSince: drift.firedAt, retrainAfterMinutes: config.retrainAfterMinutes },
      };
      if (await this.store.transition(retrain, suggested)) {
        this.deps.log.warn({ ...ref, version, driftSince: drift.firedAt }, 'retraining suggested');
        this.deps.send({
          event: 'retrain.suggested',
          at,
          app,
          channel,
          model,
          version,
          alert: { id: drift.episode, rule: 'drift', firedAt: drift.firedAt },
          evidence: suggested.evidence,
        });
      }
    }
  }
}

function summary(e: AlertEpisode, rule: { threshold: number | null; value: number | null; samples: number }) {
  return {
    id: e.episode,
    app: e.app,
    channel: e.channel,
    model: e.model,
    version: e.version,
    rule: e.rule,
    threshold: rule.threshold,
    value: rule.value,
    samples: rule.samples,
    firedAt: e.firedAt,
    resolvedAt: e.resolvedAt,
  };
}
