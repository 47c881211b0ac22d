import { randomBytes, randomUUID } from 'node:crypto';
import {
  ConflictError,
  EdgeshipError,
  type KeySet,
  PublisherSignatureError,
  releaseDocumentBytes,
  releaseId,
  type SignedRelease,
  sha256Hex,
  toHex,
  verifyRelease,
} from '@edgeship/protocol';
import {
  invalidState,
  MissingChunksError,
  notFound,
  PolicyRefusedError,
  UnprocessableError,
} from '../http/api-errors.ts';
import type {
  ApprovalRecord,
  BlobStore,
  ChannelPolicy,
  ChannelPolicyRecord,
  Lineage,
  ManifestRecord,
  Registry,
  RegistryStore,
  ReleaseRecord,
  RolloutMode,
  RolloutRecord,
} from '../storage/types.ts';
import { hasCurrentSchema, type ManifestSigner, publishManifest } from './manifest-builder.ts';

export interface Actor {
  /** Token name, or "canary-analysis" for automatic decisions. */
  name: string;
}

/** A channel with no policy of its own: anyone with the role promotes, as before policies. */
const NO_POLICY: ChannelPolicy = { requireApproval: false, approverNotPublisher: false };

export interface PublishInput {
  release: SignedRelease;
  metrics?: Record<string, number>;
  lineage?: Lineage;
  modelCard?: string;
}

export interface RolloutInput {
  app: string;
  channel: string;
  model: string;
  release: string;
  shareBps: number;
  mode?: RolloutMode;
  /** Defaults to the channel's production release. */
  control?: string | null;
}

/** A target channel's model: what rollback and direct promotion act on. */
export interface ChannelModelRef {
  app: string;
  channel: string;
  model: string;
}

/**
 * Every registry change: validate, write the change, append its audit entry and publish the next
 * manifest version, all in one transaction, so the audit trail and the served manifest can never
 * disagree with the state.
 */
export class RegistryService {
  private readonly publishedListeners: Array<(app: string, channel: string) => void> = [];

  constructor(
    private readonly store: RegistryStore,
    private readonly blobs: BlobStore,
    private readonly signer: ManifestSigner,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Called after a new manifest version of a channel committed (the manifest cache drops its copy). */
  onManifestPublished(listener: (app: string, channel: string) => void): void {
    this.publishedListeners.push(listener);
  }

  private published(app: string, channel: string): void {
    for (const listener of this.publishedListeners) listener(app, channel);
  }

  get keySet(): KeySet {
    return this.signer.keySet.signed;
  }

  async publishRelease(actor: Actor, input: PublishInput): Promise<ReleaseRecord> {
    // Compromised server or stolen token: only a release a trusted publisher signed is accepted.
    let release: SignedRelease['signed'];
    try {
      release = await verifyRelease(input.release, this.keySet);
    } catch (error) {
      if (error instanceof EdgeshipError) throw new PublisherSignatureError(error.message);
      throw error;
    }
    const missing: string[] = [];
    for (const file of release.files) {
      for (const chunk of file.chunks) {
        const size = await this.blobs.size(chunk.sha256);
        if (size !== chunk.size) missing.push(chunk.sha256);
      }
    }
    if (missing.length > 0) {
      throw new MissingChunksError(
        `upload these chunks first: ${[...new Set(missing)].slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}`,
      );
    }
    // Served by hash to the devices that download it (routes/release-documents.ts).
    const document = releaseDocumentBytes(input.release);
    await this.blobs.put(await sha256Hex(document), document);
    const record: ReleaseRecord = {
      model: release.model,
      version: release.version,
      format: release.format,
      stage: 'staging',
      signed: input.release,
      totalBytes: release.files.reduce((n, f) => n + f.size, 0),
      metrics: input.metrics ?? {},
      lineage: input.lineage ?? {},
      modelCard: input.modelCard ?? '',
      createdBy: actor.name,
      createdAt: this.now().toISOString(),
    };
    const parent = release.lineage?.parent;
    await this.store.transaction(async (tx) => {
      if (await tx.getRelease(record.model, record.version)) {
        throw new ConflictError(`${releaseId(release)} exists; releases are immutable`);
      }
      if (
        parent !== undefined &&
        (parent === release.version || !(await tx.getRelease(release.model, parent)))
      ) {
        throw new UnprocessableError(`parent release ${release.model}@${parent} is not registered`);
      }
      await tx.insertRelease(record);
      await tx.appendAudit({
        actor: actor.name,
        action: 'release.publish',
        app: null,
        channel: null,
        model: record.model,
        details: { version: record.version, totalBytes: record.totalBytes, lineage: record.lineage },
      });
    });
    return record;
  }

  async createRollout(actor: Actor, input: RolloutInput): Promise<RolloutRecord> {
    return this.change(
      input,
      async (tx, now) => {
        await this.requireRelease(tx, input.model, input.release);
        const state = await tx.getChannelModel(input.app, input.channel, input.model);
        const control = input.control === undefined ? (state?.production ?? null) : input.control;
        if (control) await this.requireRelease(tx, input.model, control);
        if (control === input.release) throw invalidState(`${input.release} is already the control release`);
        if (!state) {
          await tx.upsertChannelModel({
            ...input,
            production: null,
            previousProduction: null,
            updatedAt: now,
          });
        }
        // One rollout per model and channel: a new one replaces the running one.
        for (const running of await this.activeRollouts(tx, input)) {
          await tx.updateRollout(running.id, {
            state: 'superseded',
            reason: 'replaced by a new rollout',
            updatedAt: now,
          });
        }
        const rollout: RolloutRecord = {
          id: randomUUID(),
          app: input.app,
          channel: input.channel,
          model: input.model,
          release: input.release,
          control,
          mode: input.mode ?? 'canary',
          shareBps: input.shareBps,
          salt: toHex(randomBytes(16)),
          state: 'active',
          reason: null,
          createdBy: actor.name,
          createdAt: now,
          updatedAt: now,
        };
        await tx.insertRollout(rollout);
        return { result: rollout, action: 'rollout.create', details: { rollout } };
      },
      actor,
    );
  }

  async setShare(actor: Actor, rolloutId: string, shareBps: number): Promise<RolloutRecord> {
    const rollout = await this.requireRollout(this.store, rolloutId);
    return this.change(
      rollout,
      async (tx, now) => {
        const current = await this.requireActive(tx, rolloutId);
        await tx.updateRollout(rolloutId, { shareBps, updatedAt: now });
        return {
          result: { ...current, shareBps, updatedAt: now },
          action: 'rollout.share',
          details: { rolloutId, from: current.shareBps, to: shareBps },
        };
      },
      actor,
    );
  }

  /** Makes the rollout's release what everybody outside any rollout runs. */
  async promote(actor: Actor, rolloutId: string): Promise<RolloutRecord> {
    const rollout = await this.requireRollout(this.store, rolloutId);
    return this.change(
      rollout,
      async (tx, now) => {
        const current = await this.requireActive(tx, rolloutId);
        if (current.mode === 'shadow')
          throw invalidState('a shadow rollout is evaluated, not promoted: start a canary');
        const from = await this.setProduction(tx, current, current.release, now, 'rollout.promote');
        await tx.updateRollout(rolloutId, { state: 'promoted', reason: null, updatedAt: now });
        return {
          result: { ...current, state: 'promoted', updatedAt: now },
          action: 'rollout.promote',
          details: { rolloutId, release: current.release, previousProduction: from },
        };
      },
      actor,
    );
  }

  /** Promotes a release directly, with no rollout (e.g. a channel's first release). */
  async promoteRelease(actor: Actor, ref: ChannelModelRef, version: string): Promise<void> {
    await this.change(
      ref,
      async (tx, now) => {
        await this.requireRelease(tx, ref.model, version);
        const from = await this.setProduction(tx, ref, version, now, 'release.promote');
        for (const running of await this.activeRollouts(tx, ref)) {
          if (running.release === version)
            await tx.updateRollout(running.id, { state: 'promoted', updatedAt: now });
        }
        return {
          result: undefined,
          action: 'release.promote',
          details: { release: version, previousProduction: from },
        };
      },
      actor,
    );
  }

  /** Stops a rollout: its share goes to 0 and its devices return to the control on their next check. */
  async halt(actor: Actor, rolloutId: string, reason: string, evidence?: unknown): Promise<RolloutRecord> {
    const rollout = await this.requireRollout(this.store, rolloutId);
    return this.change(
      rollout,
      async (tx, now) => {
        const current = await this.requireActive(tx, rolloutId);
        await tx.updateRollout(rolloutId, { state: 'halted', shareBps: 0, reason, updatedAt: now });
        return {
          result: { ...current, state: 'halted', shareBps: 0, reason, updatedAt: now },
          action: 'rollout.halt',
          details: { rolloutId, release: current.release, fromShareBps: current.shareBps, reason, evidence },
        };
      },
      actor,
    );
  }

  /** Production goes back to the release it replaced; any running rollout stops. */
  async rollback(actor: Actor, ref: ChannelModelRef, reason: string): Promise<{ production: string }> {
    return this.change(
      ref,
      async (tx, now) => {
        const state = await tx.getChannelModel(ref.app, ref.channel, ref.model);
        if (!state?.previousProduction) {
          throw invalidState(`${ref.model} on ${ref.app}/${ref.channel} has no earlier production release`);
        }
        for (const running of await this.activeRollouts(tx, ref)) {
          await tx.updateRollout(running.id, { state: 'rolled_back', shareBps: 0, reason, updatedAt: now });
        }
        await tx.upsertChannelModel({
          ...state,
          production: state.previousProduction,
          previousProduction: null,
          updatedAt: now,
        });
        // The restored release serves again; the one rolled back from is archived, not left as production.
        await tx.setStage(ref.model, state.previousProduction, 'production');
        if (state.production) await this.archiveIfUnserved(tx, ref.model, state.production);
        return {
          result: { production: state.previousProduction },
          action: 'release.rollback',
          details: { from: state.production, to: state.previousProduction, reason },
        };
      },
      actor,
    );
  }

  /**
   * Records `actor`'s approval of a release for a channel's production. Under a four-eyes policy
   * the release's publisher may not approve it (refused and audited).
   */
  async approve(actor: Actor, ref: ChannelModelRef, version: string): Promise<ApprovalRecord> {
    return this.guarded(
      ref,
      async (tx) => {
        await tx.lockChannel(ref.app, ref.channel);
        const release = await this.requireRelease(tx, ref.model, version);
        if (release.stage === 'archived') throw invalidState(`${ref.model}@${version} is archived`);
        const policy = await this.policyOf(tx, ref);
        if (policy.approverNotPublisher && release.createdBy === actor.name) {
          throw new PolicyRefusedError(
            `${ref.app}/${ref.channel} requires an approver other than the publisher (${release.createdBy})`,
            { attempted: 'release.approve', version, publisher: release.createdBy },
          );
        }
        const approval: ApprovalRecord = {
          ...ref,
          version,
          approver: actor.name,
          approvedAt: this.now().toISOString(),
        };
        await tx.insertApproval(approval);
        await tx.appendAudit({
          actor: actor.name,
          action: 'release.approve',
          app: ref.app,
          channel: ref.channel,
          model: ref.model,
          details: { version, publisher: release.createdBy },
        });
        return approval;
      },
      actor,
    );
  }

  async setPolicy(
    actor: Actor,
    app: string,
    channel: string,
    policy: ChannelPolicy,
  ): Promise<ChannelPolicyRecord> {
    return this.store.transaction(async (tx) => {
      await tx.lockChannel(app, channel);
      const before = await tx.getChannelPolicy(app, channel);
      const record: ChannelPolicyRecord = {
        app,
        channel,
        policy,
        updatedBy: actor.name,
        updatedAt: this.now().toISOString(),
      };
      await tx.putChannelPolicy(record);
      await tx.appendAudit({
        actor: actor.name,
        action: 'channel.policy',
        app,
        channel,
        model: null,
        details: { from: before?.policy ?? null, to: policy },
      });
      return record;
    });
  }

  /**
   * Re-signs a channel's manifest once half its lifetime has passed (a new version, same content),
   * or `afterMs` (the leader's re-signer comes earlier, so requests rarely have to), or at once
   * when it was stored in an older schema (after an upgrade).
   * Re-checked under the channel lock, so concurrent callers produce one new version, not many.
   */
  async refreshManifest(
    app: string,
    channel: string,
    afterMs = this.signer.ttlMs / 2,
  ): Promise<ManifestRecord | null> {
    let fresh = false;
    const record = await this.store.transaction(async (tx) => {
      await tx.lockChannel(app, channel);
      const latest = await tx.latestManifest(app, channel);
      if (!latest) return null;
      const now = this.now();
      const due = Date.parse(latest.createdAt) + afterMs <= now.getTime();
      if (!due && hasCurrentSchema(latest)) return latest;
      fresh = true;
      return publishManifest(tx, this.blobs, app, channel, this.signer, now);
    });
    if (fresh) this.published(app, channel);
    return record;
  }

  get manifestTtlMs(): number {
    return this.signer.ttlMs;
  }

  private async change<T>(
    ref: ChannelModelRef,
    apply: (
      tx: Registry,
      now: string,
    ) => Promise<{ result: T; action: string; details: Record<string, unknown> }>,
    actor: Actor,
  ): Promise<T> {
    const result = await this.guarded(
      ref,
      async (tx) => {
        // Lock first: concurrent changes to one channel (from any process) apply one after another.
        await tx.lockChannel(ref.app, ref.channel);
        const now = this.now();
        const { result, action, details } = await apply(tx, now.toISOString());
        const manifest = await publishManifest(tx, this.blobs, ref.app, ref.channel, this.signer, now);
        await tx.appendAudit({
          actor: actor.name,
          action,
          app: ref.app,
          channel: ref.channel,
          model: ref.model,
          details: { ...details, manifestVersion: manifest.version },
        });
        return result;
      },
      actor,
    );
    this.published(ref.app, ref.channel);
    return result;
  }

  /**
   * Runs `fn` in a transaction; a policy refusal rolls it back, then is audited on its own (the
   * refusal must outlive the rollback), then thrown.
   */
  private async guarded<T>(ref: ChannelModelRef, fn: (tx: Registry) => Promise<T>, actor: Actor): Promise<T> {
    try {
      return await this.store.transaction(fn);
    } catch (error) {
      if (!(error instanceof PolicyRefusedError)) throw error;
      await this.store.appendAudit({
        actor: actor.name,
        action: 'policy.refused',
        app: ref.app,
        channel: ref.channel,
        model: ref.model,
        details: { ...error.details, reason: error.message },
      });
      throw error;
    }
  }

  private async policyOf(tx: Registry, ref: { app: string; channel: string }): Promise<ChannelPolicy> {
    return (await tx.getChannelPolicy(ref.app, ref.channel))?.policy ?? NO_POLICY;
  }

  /** Refuses a release the channel's policy does not let into production (yet). */
  private async requireApproved(tx: Registry, ref: ChannelModelRef, version: string, attempted: string) {
    const policy = await this.policyOf(tx, ref);
    if (!policy.requireApproval) return;
    const approval = await tx.getApproval(ref.app, ref.channel, ref.model, version);
    if (!approval) {
      throw new PolicyRefusedError(`${ref.model}@${version} is not approved for ${ref.app}/${ref.channel}`, {
        attempted,
        version,
      });
    }
  }

  /**
   * Production becomes `version`; the release it replaces is archived unless another channel still
   * serves it (the stage is the release's, channels share releases).
   */
  private async setProduction(
    tx: Registry,
    ref: ChannelModelRef,
    version: string,
    now: string,
    attempted: string,
  ) {
    const state = await tx.getChannelModel(ref.app, ref.channel, ref.model);
    const from = state?.production ?? null;
    if (from === version) throw invalidState(`${ref.model}@${version} is already in production`);
    await this.requireApproved(tx, ref, version, attempted);
    await tx.upsertChannelModel({
      app: ref.app,
      channel: ref.channel,
      model: ref.model,
      production: version,
      previousProduction: from,
      updatedAt: now,
    });
    await tx.setStage(ref.model, version, 'production');
    if (from) await this.archiveIfUnserved(tx, ref.model, from);
    return from;
  }

  private async archiveIfUnserved(tx: Registry, model: string, version: string): Promise<void> {
    if ((await tx.countProduction(model, version)) === 0) await tx.setStage(model, version, 'archived');
  }

  private activeRollouts(tx: Registry, ref: ChannelModelRef) {
    return tx.listRollouts({ app: ref.app, channel: ref.channel, model: ref.model, states: ['active'] });
  }

  private async requireRelease(tx: Registry, model: string, version: string): Promise<ReleaseRecord> {
    const record = await tx.getRelease(model, version);
    if (!record) throw notFound(`release ${model}@${version}`);
    return record;
  }

  private async requireRollout(tx: Registry, id: string): Promise<RolloutRecord> {
    const rollout = await tx.getRollout(id);
    if (!rollout) throw notFound(`rollout ${id}`);
    return rollout;
  }

  private async requireActive(tx: Registry, id: string): Promise<RolloutRecord> {
    const rollout = await this.requireRollout(tx, id);
    if (rollout.state !== 'active') throw invalidState(`rollout ${id} is ${rollout.state}, not active`);
    return rollout;
  }
}
