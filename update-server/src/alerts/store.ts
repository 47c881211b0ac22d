import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.ts';
import type { AlertConfig } from './rules.ts';

export interface AlertConfigRecord {
  app: string;
  channel: string;
  config: AlertConfig;
  updatedBy: string;
  updatedAt: string;
}

export interface EpisodeKey {
  app: string;
  channel: string;
  model: string;
  /** An AlertRule, or 'retrain'. */
  rule: string;
}

export interface AlertEpisode extends EpisodeKey {
  episode: string;
  state: 'firing' | 'resolved';
  version: string;
  firedAt: string;
  resolvedAt: string | null;
  evidence: Record<string, unknown>;
}

type Row = Database['alert_episodes'];

const toEpisode = (r: Row): AlertEpisode => ({
  app: r.app,
  channel: r.channel,
  model: r.model,
  rule: r.rule,
  episode: r.episode,
  state: r.state as AlertEpisode['state'],
  version: r.version,
  firedAt: r.fired_at,
  resolvedAt: r.resolved_at,
  evidence: JSON.parse(r.evidence) as Record<string, unknown>,
});

/**
 * Alert configurations per channel and the last episode of each rule per channel and model, in
 * the database. Every change of an episode is a compare-and-set on (episode, state): of two
 * processes (or a leader and its successor) that judge the same change, exactly one write lands,
 * and only its writer announces it.
 */
export class AlertStore {
  constructor(private readonly db: Kysely<Database>) {}

  async config(app: string, channel: string): Promise<AlertConfigRecord | null> {
    const row = await this.db
      .selectFrom('alert_configs')
      .selectAll()
      .where((eb) => eb.and({ app, channel }))
      .executeTakeFirst();
    return row ? toConfig(row) : null;
  }

  async configs(): Promise<AlertConfigRecord[]> {
    const rows = await this.db
      .selectFrom('alert_configs')
      .selectAll()
      .orderBy('app')
      .orderBy('channel')
      .execute();
    return rows.map(toConfig);
  }

  async putConfig(record: AlertConfigRecord): Promise<void> {
    const { app, channel, config, updatedBy, updatedAt } = record;
    const row = {
      app,
      channel,
      config: JSON.stringify(config),
      updated_by: updatedBy,
      updated_at: updatedAt,
    };
    // On a conflict the row replaces the stored one (its key columns keep their values).
    await this.db
      .insertInto('alert_configs')
      .values(row)
      .onConflict((oc) => oc.columns(['app', 'channel']).doUpdateSet(row))
      .execute();
  }

  async episodes(app: string, channel: string): Promise<AlertEpisode[]> {
    const rows = await this.db
      .selectFrom('alert_episodes')
      .selectAll()
      .where((eb) => eb.and({ app, channel }))
      .orderBy('model')
      .orderBy('rule')
      .execute();
    return rows.map(toEpisode);
  }

  /**
   * Replaces the episode row `from` (null: there is none yet) with `to`; false when another
   * writer changed it first (nothing written).
   */
  async transition(from: AlertEpisode | null, to: AlertEpisode): Promise<boolean> {
    const row: Row = {
      app: to.app,
      channel: to.channel,
      model: to.model,
      rule: to.rule,
      episode: to.episode,
      state: to.state,
      version: to.version,
      fired_at: to.firedAt,
      resolved_at: to.resolvedAt,
      evidence: JSON.stringify(to.evidence),
    };
    if (!from) {
      const result = await this.db
        .insertInto('alert_episodes')
        .values(row)
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    }
    const { app, channel, model, rule, ...patch } = row;
    const result = await this.db
      .updateTable('alert_episodes')
      .set(patch)
      .where((eb) => eb.and({ app, channel, model, rule, episode: from.episode, state: from.state }))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
}

function toConfig(row: Database['alert_configs']): AlertConfigRecord {
  return {
    app: row.app,
    channel: row.channel,
    config: JSON.parse(row.config) as AlertConfig,
    updatedBy: row.updated_by,
    updatedAt: row.updated_at,
  };
}
