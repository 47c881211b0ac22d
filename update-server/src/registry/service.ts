import { randomBytes, randomUUID } from 'node:crypto';
import {
  ConflictError,
  EdgeshipError,
  type ExcludedSegment,
  ExcludedSegmentSchema,
  type KeySet,
  MAX_EXCLUDED_SEGMENTS,
  MAX_ROLLOUT_ARMS,
  PublisherSignatureError,
  parseValue,
  type RolloutArm,
  releaseDocumentBytes,
  releaseId,
  rolloutArms,
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
  ChannelModelRef,
  ChannelPolicy,
  ChannelPolicyRecord,
  Lineage,
  ManifestRecord,
  NewAuditEntry,
  Registry,
  RegistryStore,
  ReleaseRecord,
  RolloutMode,
  RolloutRecord,
} from '../storage/types.ts';
import { channelPolicy, requireGates } from './governance.ts';
import { hasCurrentSchema, type ManifestSigner, publishManifest } from './manifest-builder.ts';

export interface Actor {
  /** Token name, or "canary-analysis" for automatic decisions. */
  name: string;
}

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
  /**
   * Several treatment arms (an experiment's, 2 to MAX_ROLLOUT_ARMS, canary mode): they replace
   * `release` and `shareBps`, which become the first arm's release and the shares' sum.
   */
  arms?: RolloutArm[];
}

/** What an audit entry names: the app, channel and model acted on (absent: none). */
export interface AuditTarget {
  app?: string | null;
  channel?: string | null;
  model?: string | null;
}

/** The audit entry of `actor` doing `action` on `target`. */
export function auditEntry(
  actor: Actor,
  action: string,
  { app = null, channel = null, model = null }: AuditTarget,
  details: Record<string, unknown>,
): NewAuditEntry {
  return { actor: actor.name, action, app, channel, model, details };
}

/** What a change returns to the caller, and the audit entry it writes. */
interface Change<T> {
  result: T;
  action: string;
  details: Record<string, unknown>;
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
      await tx.appendAudit(
        auditEntry(actor, 'release.publish', record, {
          version: record.version,
          totalBytes: record.totalBytes,
          lineage: record.lineage,
        }),
      );
    });
    return record;
  }

  async createRollout(actor: Actor, input: RolloutInput): Promise<RolloutRecord> {
    return this.change(actor, input, async (tx, now) => {
      const arms = checkArms(input);
      for (const arm of arms ?? [{ release: input.release, shareBps: input.shareBps }]) {
        const release = await this.requireRelease(tx, input.model, arm.release);
        if (arm.shareBps > 0 && input.mode !== 'shadow')
          await requireGates(tx, input, release, 'rollout.create');
      }
      const state = await tx.getChannelModel(input.app, input.channel, input.model);
      const control = input.control === undefined ? (state?.production ?? null) : input.control;
      if (control) await this.requireRelease(tx, input.model, control);
      for (const arm of arms ?? [input])
        if (control === arm.release) throw invalidState(`${arm.release} is already the control release`);
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
        release: arms ? arms[0]!.release : input.release,
        control,
        mode: input.mode ?? 'canary',
        shareBps: arms ? arms.reduce((n, a) => n + a.shareBps, 0) : input.shareBps,
        salt: toHex(randomBytes(16)),
        state: 'active',
        reason: null,
        createdBy: actor.name,
        createdAt: now,
        updatedAt: now,
        ...(arms && { arms }),
      };
      await tx.insertRollout(rollout);
      return { result: rollout, action: 'rollout.create', details: { rollout } };
    });
  }

  /**
   * Sets a rollout's share. Widening it (a larger share) is held to the channel's policy as a
   * promotion is: a refusal is E_POLICY, audited. `details` go into the audit entry (the schedule
   * that widened it, and on what verdict).
   */
  async setShare(
    actor: Actor,
    rolloutId: string,
    shareBps: number,
    details: Record<string, unknown> = {},
  ): Promise<RolloutRecord> {
    return this.changeActive(actor, rolloutId, async (tx, current, now) => {
      if (current.arms) {
        // One share would move the arms' ranges (and devices between arms): set the arms instead.
        throw invalidState(`rollout ${rolloutId} has ${current.arms.length} arms: its share is theirs`);
      }
      if (shareBps > current.shareBps) {
        await this.requireApproved(tx, current, current.release, 'rollout.share', {
          rolloutId,
          from: current.shareBps,
          to: shareBps,
        });
        if (current.mode !== 'shadow') {
          await requireGates(
            tx,
            current,
            await this.requireRelease(tx, current.model, current.release),
            'rollout.share',
          );
        }
      }
      await tx.updateRollout(rolloutId, { shareBps, updatedAt: now });
      return {
        result: { ...current, shareBps, updatedAt: now },
        action: 'rollout.share',
        details: { ...details, rolloutId, from: current.shareBps, to: shareBps },
      };
    });
  }

  /**
   * Re-splits a multi-arm rollout's share between its arms (an experiment's adaptive allocation):
   * the same releases in the same order and the same total, so the control's sample and the
   * rollout's reach do not change; devices whose bucket crosses an arm boundary move arms. The
   * new shares are signed into the next manifest; `details` (the posterior behind them) are audited.
   */
  async setArms(
    actor: Actor,
    rolloutId: string,
    arms: RolloutArm[],
    details: Record<string, unknown> = {},
  ): Promise<RolloutRecord> {
    return this.changeActive(actor, rolloutId, async (tx, current, now) => {
      const before = current.arms;
      const same =
        before?.length === arms.length &&
        before.every((a, i) => a.release === arms[i]!.release) &&
        arms.reduce((n, a) => n + a.shareBps, 0) === current.shareBps &&
        arms.every((a) => Number.isInteger(a.shareBps) && a.shareBps >= 1);
      if (!same)
        throw new UnprocessableError(
          `rollout ${rolloutId}: the arms keep their releases, order and total share (${current.shareBps} bp), each at least 1 bp`,
        );
      await tx.updateRollout(rolloutId, { arms, updatedAt: now });
      return {
        result: { ...current, arms, updatedAt: now },
        action: 'rollout.arms',
        details: { ...details, rolloutId, from: before, to: arms },
      };
    });
  }

  /**
   * Why the channel's policy would refuse `version` into production or a wider rollout now, or
   * null. Reads only (no audit): the rollout schedule checks it before retrying a refused step.
   */
  async policyRefusal(ref: ChannelModelRef, version: string): Promise<string | null> {
    try {
      await this.requireApproved(this.store, ref, version, 'check');
      return null;
    } catch (error) {
      if (error instanceof PolicyRefusedError) return error.message;
      throw error;
    }
  }

  /** Makes the rollout's release what everybody outside any rollout runs (`details`: for the audit entry). */
  async promote(
    actor: Actor,
    rolloutId: string,
    details: Record<string, unknown> = {},
  ): Promise<RolloutRecord> {
    return this.changeActive(actor, rolloutId, async (tx, current, now) => {
      if (current.mode === 'shadow')
        throw invalidState('a shadow rollout is evaluated, not promoted: start a canary');
      if (current.arms)
        throw invalidState(
          `rollout ${rolloutId} has ${current.arms.length} arms: promote the chosen arm's release directly`,
        );
      const from = await this.setProduction(tx, current, current.release, now, 'rollout.promote');
      await tx.updateRollout(rolloutId, { state: 'promoted', reason: null, updatedAt: now });
      return {
        result: { ...current, state: 'promoted', updatedAt: now },
        action: 'rollout.promote',
        details: { ...details, rolloutId, release: current.release, previousProduction: from },
      };
    });
  }

  /** Promotes a release directly, with no rollout (e.g. a channel's first release). */
  async promoteRelease(actor: Actor, ref: ChannelModelRef, version: string): Promise<void> {
    await this.change(actor, ref, async (tx, now) => {
      await this.requireRelease(tx, ref.model, version);
      const from = await this.setProduction(tx, ref, version, now, 'release.promote');
      for (const running of await this.activeRollouts(tx, ref)) {
        // An experiment's arm promoted ends the experiment as promoted, whichever arm it was.
        if (rolloutArms(running).some((arm) => arm.release === version))
          await tx.updateRollout(running.id, { state: 'promoted', updatedAt: now });
      }
      return {
        result: undefined,
        action: 'release.promote',
        details: { release: version, previousProduction: from },
      };
    });
  }

  /** Stops a rollout: its share goes to 0 and its devices return to the control on their next check. */
  async halt(actor: Actor, rolloutId: string, reason: string, evidence?: unknown): Promise<RolloutRecord> {
    return this.changeActive(actor, rolloutId, async (tx, current, now) => {
      await tx.updateRollout(rolloutId, { state: 'halted', shareBps: 0, reason, updatedAt: now });
      return {
        result: { ...current, state: 'halted', shareBps: 0, reason, updatedAt: now },
        action: 'rollout.halt',
        details: { rolloutId, release: current.release, fromShareBps: current.shareBps, reason, evidence },
      };
    });
  }

  /**
   * Leaves segments out of a running rollout: their devices return to production on their next
   * check (the manifest names the segments, signed), the rest of the rollout goes on. Adds to the
   * segments already excluded; past MAX_EXCLUDED_SEGMENTS, refused (halt the rollout instead).
   */
  async excludeSegments(
    actor: Actor,
    rolloutId: string,
    segments: readonly ExcludedSegment[],
    reason: string,
    evidence?: unknown,
  ): Promise<RolloutRecord> {
    return this.changeActive(actor, rolloutId, async (tx, current, now) => {
      const before = current.excludedSegments ?? [];
      const added = segments
        .map((s) => parseValue(ExcludedSegmentSchema, s, 'excluded segment'))
        .filter((s) => !before.some((b) => b.dimension === s.dimension && b.value === s.value));
      const excludedSegments = [...before, ...added];
      if (added.length === 0) throw invalidState(`rollout ${rolloutId} already excludes those segments`);
      if (excludedSegments.length > MAX_EXCLUDED_SEGMENTS) {
        throw invalidState(`a rollout excludes at most ${MAX_EXCLUDED_SEGMENTS} segments`);
      }
      await tx.updateRollout(rolloutId, { excludedSegments, updatedAt: now });
      return {
        result: { ...current, excludedSegments, updatedAt: now },
        action: 'rollout.exclude',
        details: { rolloutId, release: current.release, added, excludedSegments, reason, evidence },
      };
    });
  }

  /** Production goes back to the release it replaced; any running rollout stops. */
  async rollback(actor: Actor, ref: ChannelModelRef, reason: string): Promise<{ production: string }> {
    return this.change(actor, ref, async (tx, now) => {
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
    });
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
        await tx.appendAudit(
          auditEntry(actor, 'release.approve', ref, { version, publisher: release.createdBy }),
        );
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
      await tx.appendAudit(
        auditEntry(actor, 'channel.policy', { app, channel }, { from: before?.policy ?? null, to: policy }),
      );
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

  /** A change to a running rollout: `apply` sees it as it is inside the channel's lock. */
  private async changeActive<T>(
    actor: Actor,
    rolloutId: string,
    apply: (tx: Registry, current: RolloutRecord, now: string) => Promise<Change<T>>,
  ): Promise<T> {
    const rollout = await this.requireRollout(this.store, rolloutId);
    return this.change(actor, rollout, async (tx, now) =>
      apply(tx, await this.requireActive(tx, rolloutId), now),
    );
  }

  private async change<T>(
    actor: Actor,
    ref: ChannelModelRef,
    apply: (tx: Registry, now: string) => Promise<Change<T>>,
  ): Promise<T> {
    const result = await this.guarded(
      ref,
      async (tx) => {
        // Lock first: concurrent changes to one channel (from any process) apply one after another.
        await tx.lockChannel(ref.app, ref.channel);
        const now = this.now();
        const { result, action, details } = await apply(tx, now.toISOString());
        const manifest = await publishManifest(tx, this.blobs, ref.app, ref.channel, this.signer, now);
        await tx.appendAudit(
          auditEntry(actor, action, ref, { ...details, manifestVersion: manifest.version }),
        );
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
      await this.store.appendAudit(
        auditEntry(actor, 'policy.refused', ref, { ...error.details, reason: error.message }),
      );
      throw error;
    }
  }

  private policyOf(tx: Registry, ref: { app: string; channel: string }): Promise<ChannelPolicy> {
    return channelPolicy(tx, ref);
  }

  /**
   * Refuses a release the channel's policy does not let into production, or into a wider
   * rollout, (yet): no approval, or (four eyes) only the publisher's own, recorded before the
   * policy asked for another approver.
   */
  private async requireApproved(
    tx: Registry,
    ref: ChannelModelRef,
    version: string,
    attempted: string,
    details: Record<string, unknown> = {},
  ) {
    const policy = await this.policyOf(tx, ref);
    if (!policy.requireApproval) return;
    const approval = await tx.getApproval(ref.app, ref.channel, ref.model, version);
    if (!approval) {
      throw new PolicyRefusedError(`${ref.model}@${version} is not approved for ${ref.app}/${ref.channel}`, {
        ...details,
        attempted,
        version,
      });
    }
    if (policy.approverNotPublisher) {
      const release = await this.requireRelease(tx, ref.model, version);
      if (approval.approver === release.createdBy) {
        throw new PolicyRefusedError(
          `${ref.model}@${version} is approved for ${ref.app}/${ref.channel} only by its publisher (${release.createdBy}); the policy requires another approver`,
          { ...details, attempted, version, publisher: release.createdBy },
        );
      }
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
    await requireGates(tx, ref, await this.requireRelease(tx, ref.model, version), attempted);
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

/**
 * A multi-arm rollout's arms as the manifest will carry them (protocol RolloutSchema), or undefined
 * for a rollout of one release. Refused (E_UNPROCESSABLE) when the manifest would not verify.
 */
function checkArms(input: RolloutInput): RolloutArm[] | undefined {
  const arms = input.arms;
  if (!arms) return undefined;
  const total = arms.reduce((n, a) => n + a.shareBps, 0);
  const problem =
    arms.length < 2 || arms.length > MAX_ROLLOUT_ARMS
      ? `a multi-arm rollout has 2 to ${MAX_ROLLOUT_ARMS} arms, not ${arms.length}`
      : (input.mode ?? 'canary') !== 'canary'
        ? 'a multi-arm rollout is a canary'
        : new Set(arms.map((a) => a.release)).size !== arms.length
          ? 'each arm runs a different release'
          : total > 10_000 || arms.some((a) => !Number.isInteger(a.shareBps) || a.shareBps < 1)
            ? 'each arm has a share of at least 1 bp, and together at most 10000'
            : null;
  if (problem) throw new UnprocessableError(problem);
  return arms.map((a) => ({ release: a.release, shareBps: a.shareBps }));
}
