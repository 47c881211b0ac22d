import type { Readable } from 'node:stream';
import type { ExcludedSegment, RolloutArm, SignedRelease } from '@edgeship/protocol';

/**
 * The registry's storage contract. Two implementations share one Kysely code path: SQLite
 * (better-sqlite3, WAL; the embedded default, one process) and PostgreSQL (`DATABASE_URL`; any
 * number of stateless server processes). Rows are plain data; JSON columns are parsed here.
 */

export type Stage = 'staging' | 'production' | 'archived';
/** `admin` manages tokens; `publisher` uploads releases; `operator` runs rollouts; every role reads. */
export type Role = 'admin' | 'publisher' | 'operator' | 'viewer';
export type RolloutMode = 'canary' | 'shadow';
export type RolloutState = 'active' | 'halted' | 'promoted' | 'rolled_back' | 'superseded';

/** An app's channel: what manifests, policies and alert thresholds belong to. */
export interface ChannelRef {
  app: string;
  channel: string;
}

/** A model on an app's channel: what production, rollouts, approvals and alerts are kept for. */
export interface ChannelModelRef extends ChannelRef {
  model: string;
}

export interface Lineage {
  sourceCommit?: string;
  datasetHash?: string;
  parameters?: Record<string, unknown>;
  parent?: string;
}

export interface ReleaseRecord {
  model: string;
  version: string;
  format: 'onnx' | 'tfjs';
  stage: Stage;
  /** The publisher-signed release exactly as uploaded (verified before it was stored). */
  signed: SignedRelease;
  totalBytes: number;
  metrics: Record<string, number>;
  lineage: Lineage;
  modelCard: string;
  createdBy: string;
  createdAt: string;
}

/** What a channel serves for one model outside any rollout. */
export interface ChannelModelRecord extends ChannelModelRef {
  production: string | null;
  /** The release production pointed at before the last promotion: where a rollback goes. */
  previousProduction: string | null;
  updatedAt: string;
}

export interface RolloutRecord extends ChannelModelRef {
  id: string;
  release: string;
  control: string | null;
  mode: RolloutMode;
  shareBps: number;
  salt: string;
  state: RolloutState;
  /** Why it stopped (operator note or the canary analysis verdict). */
  reason: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  /**
   * Segments left out of the rollout (the channel's `segmentRegression: 'exclude'` policy, after a
   * regression confined to them); signed into the manifest. Absent or empty: none.
   */
  excludedSegments?: ExcludedSegment[];
  /**
   * An experiment's treatment arms (2 to 4), signed into the manifest: `release` is the first
   * arm's and `shareBps` their sum. Absent: one arm, `release` at `shareBps`.
   */
  arms?: RolloutArm[];
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  app: string | null;
  channel: string | null;
  model: string | null;
  /** Free-form evidence: before/after values, canary verdicts. Never rewritten. */
  details: Record<string, unknown>;
}

export type NewAuditEntry = Omit<AuditEntry, 'id' | 'at'> & { at?: string };

/** Who approved a release for a channel's production, and when. */
export interface ApprovalRecord extends ChannelModelRef {
  version: string;
  approver: string;
  approvedAt: string;
}

/** What a channel requires before a release may become its production (or be widened to). */
export interface ChannelPolicy {
  /** Promotion needs an approval of the release for this channel. */
  requireApproval: boolean;
  /** The approver must not be the token that published the release (four eyes). */
  approverNotPublisher: boolean;
  /**
   * What the canary analysis does when a rollout regresses on segments alone and the rest of the
   * fleet is healthy without them: halt the rollout (the default), or exclude those segments
   * (their devices return to production; the others continue).
   */
  segmentRegression?: 'halt' | 'exclude';
  /**
   * Gates (by name, e.g. `accuracy-vs-production`) the signed release must record before it is
   * promoted or its rollout started or widened here. Absent in policies stored before it: none.
   */
  requireGates?: string[];
}

export interface ChannelPolicyRecord extends ChannelRef {
  policy: ChannelPolicy;
  updatedBy: string;
  updatedAt: string;
}

/** A signed manifest as served: built once per change, stored, then served byte for byte. */
export interface ManifestRecord extends ChannelRef {
  version: number;
  body: string;
  etag: string;
  createdAt: string;
}

export interface TokenRecord {
  id: string;
  name: string;
  role: Role;
  /** SHA-256 hex of the bearer token; the token itself is never stored. */
  hash: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
}

export interface AuditQuery {
  app?: string;
  channel?: string;
  model?: string;
  /** Entries with id < before (paging backwards). */
  before?: number;
  limit: number;
}

export interface RolloutQuery {
  app?: string;
  channel?: string;
  model?: string;
  states?: RolloutState[];
}

export interface Registry {
  insertRelease(record: ReleaseRecord): Promise<void>; // ConflictError if (model, version) exists
  getRelease(model: string, version: string): Promise<ReleaseRecord | null>;
  listReleases(model?: string): Promise<ReleaseRecord[]>; // newest first
  setStage(model: string, version: string, stage: Stage): Promise<void>;
  listModels(): Promise<string[]>;

  getChannelModel(app: string, channel: string, model: string): Promise<ChannelModelRecord | null>;
  listChannelModels(app: string, channel: string): Promise<ChannelModelRecord[]>;
  upsertChannelModel(record: ChannelModelRecord): Promise<void>;
  listChannels(): Promise<Array<{ app: string; channel: string }>>;

  insertRollout(record: RolloutRecord): Promise<void>;
  getRollout(id: string): Promise<RolloutRecord | null>;
  updateRollout(
    id: string,
    patch: Partial<
      Pick<RolloutRecord, 'shareBps' | 'state' | 'reason' | 'updatedAt' | 'excludedSegments' | 'arms'>
    >,
  ): Promise<void>;
  listRollouts(query?: RolloutQuery): Promise<RolloutRecord[]>; // newest first

  insertApproval(record: ApprovalRecord): Promise<void>; // ConflictError if approved already
  getApproval(app: string, channel: string, model: string, version: string): Promise<ApprovalRecord | null>;
  listApprovals(model: string, version: string): Promise<ApprovalRecord[]>; // by app, channel
  getChannelPolicy(app: string, channel: string): Promise<ChannelPolicyRecord | null>;
  putChannelPolicy(record: ChannelPolicyRecord): Promise<void>;
  /** How many channels serve this release as production (a release leaves production in none). */
  countProduction(model: string, version: string): Promise<number>;

  appendAudit(entry: NewAuditEntry): Promise<AuditEntry>;
  listAudit(query: AuditQuery): Promise<AuditEntry[]>; // newest first

  latestManifest(app: string, channel: string): Promise<ManifestRecord | null>;
  /** The newest version number alone (cheap: a cache checks it to see whether its copy is current). */
  latestManifestVersion(app: string, channel: string): Promise<number | null>;
  insertManifest(record: ManifestRecord): Promise<void>; // ConflictError if (app, channel, version) exists

  insertToken(record: TokenRecord): Promise<void>;
  findTokenByHash(hash: string): Promise<TokenRecord | null>;
  getToken(id: string): Promise<TokenRecord | null>;
  listTokens(): Promise<TokenRecord[]>; // newest first
  /** Sets revokedAt once; false when the token does not exist or is revoked already. */
  revokeToken(id: string, at: string): Promise<boolean>;
  /**
   * Serialises writers of one app/channel until the transaction ends (PostgreSQL: a row lock;
   * SQLite: a no-op, its one connection already serialises transactions).
   */
  lockChannel(app: string, channel: string): Promise<void>;
}

export interface RegistryStore extends Registry {
  readonly dialect: 'sqlite' | 'postgres';
  /** Runs `fn` in one transaction; everything it writes commits together or not at all. */
  transaction<T>(fn: (tx: Registry) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Content-addressed chunk bytes. Immutable: a hash always names the same bytes. */
export interface BlobStore {
  /** Stores bytes under their SHA-256, which it checks; storing an existing chunk is a no-op. */
  put(sha256: string, bytes: Uint8Array): Promise<void>;
  /**
   * Stores a chunk as it arrives (the upload route): hashed incrementally and checked against
   * `sha256` before it becomes visible. E_LENGTH past `maxBytes` or when empty, E_HASH on a
   * mismatch; returns the size. Storing an existing chunk reads the body and keeps the stored one.
   */
  putStream(sha256: string, body: AsyncIterable<Uint8Array>, maxBytes: number): Promise<number>;
  get(sha256: string): Promise<Uint8Array | null>;
  /**
   * Bytes `start`..`end` (inclusive) as a stream, never the whole chunk in memory (what the chunk
   * route serves). Call after `size` said the chunk exists.
   */
  stream(sha256: string, start: number, end: number): Readable;
  size(sha256: string): Promise<number | null>;
  /** The subset of `hashes` not stored yet, in the given order. */
  missing(hashes: string[]): Promise<string[]>;
  close(): Promise<void>;
}
