import { ConflictError, NotFoundError } from '@edgeship/protocol';
import type { InsertResult, Kysely } from 'kysely';
import * as rows from './rows.ts';
import type { Database, DialectName } from './schema.ts';
import type {
  ApprovalRecord,
  AuditEntry,
  AuditQuery,
  ChannelModelRecord,
  ChannelPolicyRecord,
  ManifestRecord,
  NewAuditEntry,
  Registry,
  RegistryStore,
  ReleaseRecord,
  RolloutQuery,
  RolloutRecord,
  Stage,
  TokenRecord,
} from './types.ts';
import { isUniqueViolation } from './unique-violation.ts';

/**
 * The registry on Kysely, one code path for SQLite and PostgreSQL. `db` is either the store's
 * Kysely instance or, inside `transaction`, the Transaction every call of `fn` goes through.
 */
export class KyselyRegistry implements RegistryStore {
  constructor(
    private readonly db: Kysely<Database>,
    readonly dialect: DialectName,
    private readonly onClose: () => Promise<void> = async () => {},
  ) {}

  transaction<T>(fn: (tx: Registry) => Promise<T>): Promise<T> {
    // The Transaction pins one connection. On SQLite that is the only connection: a call on the
    // outer store from inside `fn` would wait for it forever, so `fn` must use `tx` only.
    return this.db.transaction().execute((trx) => fn(new KyselyRegistry(trx, this.dialect)));
  }

  close(): Promise<void> {
    return this.onClose();
  }

  async insertRelease(record: ReleaseRecord): Promise<void> {
    await insertOrConflict(
      this.db
        .insertInto('releases')
        .values(rows.releaseToRow(record))
        .onConflict((oc) => oc.doNothing()),
      `release ${record.model}@${record.version} exists`,
    );
  }

  async getRelease(model: string, version: string): Promise<ReleaseRecord | null> {
    const row = await this.db
      .selectFrom('releases')
      .selectAll()
      .where((eb) => eb.and({ model, version }))
      .executeTakeFirst();
    return row ? rows.releaseFromRow(row) : null;
  }

  async listReleases(model?: string): Promise<ReleaseRecord[]> {
    const found = await this.db
      .selectFrom('releases')
      .selectAll()
      .$if(model !== undefined, (q) => q.where('model', '=', model!))
      .orderBy('created_at', 'desc')
      .orderBy('model')
      .orderBy('version', 'desc')
      .execute();
    return found.map(rows.releaseFromRow);
  }

  async setStage(model: string, version: string, stage: Stage): Promise<void> {
    const result = await this.db
      .updateTable('releases')
      .set({ stage })
      .where((eb) => eb.and({ model, version }))
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw new NotFoundError(`no release ${model}@${version}`);
  }

  async listModels(): Promise<string[]> {
    const found = await this.db.selectFrom('releases').select('model').distinct().orderBy('model').execute();
    return found.map((r) => r.model);
  }

  async getChannelModel(app: string, channel: string, model: string): Promise<ChannelModelRecord | null> {
    const row = await this.db
      .selectFrom('channel_models')
      .selectAll()
      .where((eb) => eb.and({ app, channel, model }))
      .executeTakeFirst();
    return row ? rows.channelModelFromRow(row) : null;
  }

  async listChannelModels(app: string, channel: string): Promise<ChannelModelRecord[]> {
    const found = await this.db
      .selectFrom('channel_models')
      .selectAll()
      .where((eb) => eb.and({ app, channel }))
      .orderBy('model')
      .execute();
    return found.map(rows.channelModelFromRow);
  }

  async upsertChannelModel(record: ChannelModelRecord): Promise<void> {
    const row = rows.channelModelToRow(record);
    await this.db
      .insertInto('channel_models')
      .values(row)
      .onConflict((oc) => oc.columns(['app', 'channel', 'model']).doUpdateSet(row))
      .execute();
  }

  /** Every app/channel that has a manifest or a configured model, by app then channel. */
  async listChannels(): Promise<Array<{ app: string; channel: string }>> {
    return this.db
      .selectFrom('manifests')
      .select(['app', 'channel'])
      .union(this.db.selectFrom('channel_models').select(['app', 'channel']))
      .orderBy('app')
      .orderBy('channel')
      .execute();
  }

  async insertRollout(record: RolloutRecord): Promise<void> {
    await insertOrConflict(
      this.db
        .insertInto('rollouts')
        .values(rows.rolloutToRow(record))
        .onConflict((oc) => oc.doNothing()),
      `rollout ${record.id} exists`,
    );
  }

  async getRollout(id: string): Promise<RolloutRecord | null> {
    const row = await this.db.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? rows.rolloutFromRow(row) : null;
  }

  async updateRollout(
    id: string,
    patch: Partial<
      Pick<RolloutRecord, 'shareBps' | 'state' | 'reason' | 'updatedAt' | 'excludedSegments' | 'arms'>
    >,
  ): Promise<void> {
    const set = {
      ...(patch.arms !== undefined && { arms: JSON.stringify(patch.arms) }),
      ...(patch.excludedSegments !== undefined && {
        excluded_segments: JSON.stringify(patch.excludedSegments),
      }),
      ...(patch.shareBps !== undefined && { share_bps: patch.shareBps }),
      ...(patch.state !== undefined && { state: patch.state }),
      ...(patch.reason !== undefined && { reason: patch.reason }),
      ...(patch.updatedAt !== undefined && { updated_at: patch.updatedAt }),
    };
    const found =
      Object.keys(set).length === 0
        ? (await this.getRollout(id)) !== null
        : (await this.db.updateTable('rollouts').set(set).where('id', '=', id).executeTakeFirst())
            .numUpdatedRows > 0n;
    if (!found) throw new NotFoundError(`no rollout ${id}`);
  }

  async listRollouts(query: RolloutQuery = {}): Promise<RolloutRecord[]> {
    if (query.states?.length === 0) return [];
    const found = await this.db
      .selectFrom('rollouts')
      .selectAll()
      .$if(query.app !== undefined, (q) => q.where('app', '=', query.app!))
      .$if(query.channel !== undefined, (q) => q.where('channel', '=', query.channel!))
      .$if(query.model !== undefined, (q) => q.where('model', '=', query.model!))
      .$if(query.states !== undefined, (q) => q.where('state', 'in', query.states!))
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    return found.map(rows.rolloutFromRow);
  }

  async insertApproval(record: ApprovalRecord): Promise<void> {
    await insertOrConflict(
      this.db
        .insertInto('release_approvals')
        .values({
          app: record.app,
          channel: record.channel,
          model: record.model,
          version: record.version,
          approver: record.approver,
          approved_at: record.approvedAt,
        })
        .onConflict((oc) => oc.doNothing()),
      `${record.model}@${record.version} is approved for ${record.app}/${record.channel} already`,
    );
  }

  async getApproval(
    app: string,
    channel: string,
    model: string,
    version: string,
  ): Promise<ApprovalRecord | null> {
    const row = await this.db
      .selectFrom('release_approvals')
      .selectAll()
      .where((eb) => eb.and({ app, channel, model, version }))
      .executeTakeFirst();
    return row ? rows.approvalFromRow(row) : null;
  }

  async listApprovals(model: string, version: string): Promise<ApprovalRecord[]> {
    const found = await this.db
      .selectFrom('release_approvals')
      .selectAll()
      .where((eb) => eb.and({ model, version }))
      .orderBy('app')
      .orderBy('channel')
      .execute();
    return found.map(rows.approvalFromRow);
  }

  async getChannelPolicy(app: string, channel: string): Promise<ChannelPolicyRecord | null> {
    const row = await this.db
      .selectFrom('channel_policies')
      .selectAll()
      .where((eb) => eb.and({ app, channel }))
      .executeTakeFirst();
    return row
      ? {
          app: row.app,
          channel: row.channel,
          policy: JSON.parse(row.policy),
          updatedBy: row.updated_by,
          updatedAt: row.updated_at,
        }
      : null;
  }

  async putChannelPolicy(record: ChannelPolicyRecord): Promise<void> {
    const { app, channel, policy, updatedBy, updatedAt } = record;
    const row = {
      app,
      channel,
      policy: JSON.stringify(policy),
      updated_by: updatedBy,
      updated_at: updatedAt,
    };
    // On a conflict the row replaces the stored one (its key columns keep their values).
    await this.db
      .insertInto('channel_policies')
      .values(row)
      .onConflict((oc) => oc.columns(['app', 'channel']).doUpdateSet(row))
      .execute();
  }

  async countProduction(model: string, version: string): Promise<number> {
    const row = await this.db
      .selectFrom('channel_models')
      .select((eb) => eb.fn.countAll().as('n'))
      .where((eb) => eb.and({ model, production: version }))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async appendAudit(entry: NewAuditEntry): Promise<AuditEntry> {
    const row = await this.db
      .insertInto('audit')
      .values({
        at: entry.at ?? new Date().toISOString(),
        actor: entry.actor,
        action: entry.action,
        app: entry.app,
        channel: entry.channel,
        model: entry.model,
        details: JSON.stringify(entry.details),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return rows.auditFromRow(row);
  }

  async listAudit(query: AuditQuery): Promise<AuditEntry[]> {
    const found = await this.db
      .selectFrom('audit')
      .selectAll()
      .$if(query.app !== undefined, (q) => q.where('app', '=', query.app!))
      .$if(query.channel !== undefined, (q) => q.where('channel', '=', query.channel!))
      .$if(query.model !== undefined, (q) => q.where('model', '=', query.model!))
      .$if(query.before !== undefined, (q) => q.where('id', '<', query.before!))
      .orderBy('id', 'desc')
      .limit(Math.max(0, Math.floor(query.limit)))
      .execute();
    return found.map(rows.auditFromRow);
  }

  async latestManifest(app: string, channel: string): Promise<ManifestRecord | null> {
    const row = await this.db
      .selectFrom('manifests')
      .selectAll()
      .where((eb) => eb.and({ app, channel }))
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? rows.manifestFromRow(row) : null;
  }

  async latestManifestVersion(app: string, channel: string): Promise<number | null> {
    // Index-only on the (app, channel, version) primary key: what a cached manifest checks.
    const row = await this.db
      .selectFrom('manifests')
      .select('version')
      .where((eb) => eb.and({ app, channel }))
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? Number(row.version) : null;
  }

  async insertManifest(record: ManifestRecord): Promise<void> {
    await insertOrConflict(
      this.db
        .insertInto('manifests')
        .values(rows.manifestToRow(record))
        .onConflict((oc) => oc.doNothing()),
      `manifest ${record.app}/${record.channel} version ${record.version} exists`,
    );
  }

  async insertToken(record: TokenRecord): Promise<void> {
    await insertOrConflict(
      this.db
        .insertInto('tokens')
        .values(rows.tokenToRow(record))
        .onConflict((oc) => oc.doNothing()),
      `token ${record.id} (or its hash) exists`,
    );
  }

  async findTokenByHash(hash: string): Promise<TokenRecord | null> {
    const row = await this.db.selectFrom('tokens').selectAll().where('hash', '=', hash).executeTakeFirst();
    return row ? rows.tokenFromRow(row) : null;
  }

  async getToken(id: string): Promise<TokenRecord | null> {
    const row = await this.db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? rows.tokenFromRow(row) : null;
  }

  async revokeToken(id: string, at: string): Promise<boolean> {
    const result = await this.db
      .updateTable('tokens')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async listTokens(): Promise<TokenRecord[]> {
    const found = await this.db
      .selectFrom('tokens')
      .selectAll()
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    return found.map(rows.tokenFromRow);
  }

  async lockChannel(app: string, channel: string): Promise<void> {
    // SQLite: one connection, and a transaction holds it, so writers are already serialised.
    if (this.dialect !== 'postgres') return;
    // The row must exist to be locked; a concurrent creator makes this wait, then do nothing.
    await this.db
      .insertInto('channels')
      .values({ app, channel, created_at: new Date().toISOString() })
      .onConflict((oc) => oc.columns(['app', 'channel']).doNothing())
      .execute();
    await this.db
      .selectFrom('channels')
      .select('app')
      .where((eb) => eb.and({ app, channel }))
      .forUpdate()
      .execute();
  }
}

/**
 * Runs an `INSERT ... ON CONFLICT DO NOTHING` and throws ConflictError when it inserted nothing,
 * i.e. when any unique key (primary or not) already held the row. DO NOTHING rather than catching
 * the violation: on PostgreSQL a failed statement aborts the whole transaction, so a caller that
 * handles the conflict could not go on. The catch is for violations DO NOTHING does not cover.
 */
async function insertOrConflict(
  query: { executeTakeFirstOrThrow(): Promise<InsertResult> },
  message: string,
): Promise<void> {
  let result: InsertResult;
  try {
    result = await query.executeTakeFirstOrThrow();
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError(message, { cause: error });
    throw error;
  }
  if (result.numInsertedOrUpdatedRows === 0n) throw new ConflictError(message);
}
