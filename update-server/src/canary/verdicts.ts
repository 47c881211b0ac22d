import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.ts';

export type VerdictKind = 'canary' | 'shadow';

export interface StoredVerdict<V> {
  /** ISO 8601: when the monitor judged. */
  at: string;
  verdict: V;
}

/**
 * The last verdict per rollout and kind, in the database: the leader's monitor writes it, any
 * process reads it (fleet API, a new leader after failover).
 */
export class VerdictStore {
  constructor(private readonly db: Kysely<Database>) {}

  async save<V extends { decision: string }>(
    rolloutId: string,
    kind: VerdictKind,
    verdict: V,
  ): Promise<void> {
    const row = {
      rollout_id: rolloutId,
      kind,
      decision: verdict.decision,
      verdict: JSON.stringify(verdict),
      judged_at: new Date().toISOString(),
    };
    await this.db
      .insertInto('canary_verdicts')
      .values(row)
      .onConflict((oc) =>
        oc
          .columns(['rollout_id', 'kind'])
          .doUpdateSet({ decision: row.decision, verdict: row.verdict, judged_at: row.judged_at }),
      )
      .execute();
  }

  async last<V>(rolloutId: string, kind: VerdictKind): Promise<StoredVerdict<V> | undefined> {
    const row = await this.db
      .selectFrom('canary_verdicts')
      .select(['verdict', 'judged_at'])
      .where('rollout_id', '=', rolloutId)
      .where('kind', '=', kind)
      .executeTakeFirst();
    return row ? { at: row.judged_at, verdict: JSON.parse(row.verdict) as V } : undefined;
  }
}
