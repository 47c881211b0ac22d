import type { Insertable, Selectable } from 'kysely';
import type {
  AuditTable,
  ChannelModelsTable,
  ManifestsTable,
  ReleaseApprovalsTable,
  ReleasesTable,
  RolloutsTable,
  TokensTable,
} from './schema.ts';
import type {
  ApprovalRecord,
  AuditEntry,
  ChannelModelRecord,
  ManifestRecord,
  ReleaseRecord,
  RolloutRecord,
  TokenRecord,
} from './types.ts';

/**
 * Record <-> row mapping, the one place that knows column names and JSON encoding. Enum columns
 * are cast back unchecked: only the store writes them, from typed records.
 */

export function releaseToRow(r: ReleaseRecord): Insertable<ReleasesTable> {
  return {
    model: r.model,
    version: r.version,
    format: r.format,
    stage: r.stage,
    signed: JSON.stringify(r.signed),
    total_bytes: r.totalBytes,
    metrics: JSON.stringify(r.metrics),
    lineage: JSON.stringify(r.lineage),
    model_card: r.modelCard,
    created_by: r.createdBy,
    created_at: r.createdAt,
  };
}

export function releaseFromRow(row: Selectable<ReleasesTable>): ReleaseRecord {
  return {
    model: row.model,
    version: row.version,
    format: row.format as ReleaseRecord['format'],
    stage: row.stage as ReleaseRecord['stage'],
    signed: JSON.parse(row.signed),
    totalBytes: Number(row.total_bytes),
    metrics: JSON.parse(row.metrics),
    lineage: JSON.parse(row.lineage),
    modelCard: row.model_card,
    createdBy: row.created_by,
    createdAt: row.created_at,
  };
}

export function channelModelToRow(r: ChannelModelRecord): Insertable<ChannelModelsTable> {
  return {
    app: r.app,
    channel: r.channel,
    model: r.model,
    production: r.production,
    previous_production: r.previousProduction,
    updated_at: r.updatedAt,
  };
}

export function channelModelFromRow(row: Selectable<ChannelModelsTable>): ChannelModelRecord {
  return {
    app: row.app,
    channel: row.channel,
    model: row.model,
    production: row.production,
    previousProduction: row.previous_production,
    updatedAt: row.updated_at,
  };
}

export function rolloutToRow(r: RolloutRecord): Insertable<RolloutsTable> {
  return {
    id: r.id,
    app: r.app,
    channel: r.channel,
    model: r.model,
    release: r.release,
    control: r.control,
    mode: r.mode,
    share_bps: r.shareBps,
    salt: r.salt,
    state: r.state,
    reason: r.reason,
    created_by: r.createdBy,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
    excluded_segments: JSON.stringify(r.excludedSegments ?? []),
    arms: JSON.stringify(r.arms ?? []),
  };
}

export function rolloutFromRow(row: Selectable<RolloutsTable>): RolloutRecord {
  return {
    id: row.id,
    app: row.app,
    channel: row.channel,
    model: row.model,
    release: row.release,
    control: row.control,
    mode: row.mode as RolloutRecord['mode'],
    shareBps: row.share_bps,
    salt: row.salt,
    state: row.state as RolloutRecord['state'],
    reason: row.reason,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    // Only when there are some, as in the manifest.
    ...(row.excluded_segments !== '[]' && { excludedSegments: JSON.parse(row.excluded_segments) }),
    ...(row.arms !== '[]' && { arms: JSON.parse(row.arms) }),
  };
}

export function auditFromRow(row: Selectable<AuditTable>): AuditEntry {
  return {
    id: Number(row.id),
    at: row.at,
    actor: row.actor,
    action: row.action,
    app: row.app,
    channel: row.channel,
    model: row.model,
    details: JSON.parse(row.details),
  };
}

export function manifestFromRow(row: Selectable<ManifestsTable>): ManifestRecord {
  return {
    app: row.app,
    channel: row.channel,
    version: Number(row.version),
    body: row.body,
    etag: row.etag,
    createdAt: row.created_at,
  };
}

export function manifestToRow(r: ManifestRecord): Insertable<ManifestsTable> {
  return {
    app: r.app,
    channel: r.channel,
    version: r.version,
    body: r.body,
    etag: r.etag,
    created_at: r.createdAt,
  };
}

export function tokenToRow(r: TokenRecord): Insertable<TokensTable> {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    hash: r.hash,
    created_at: r.createdAt,
    expires_at: r.expiresAt,
    revoked_at: r.revokedAt,
  };
}

export function tokenFromRow(row: Selectable<TokensTable>): TokenRecord {
  return {
    id: row.id,
    name: row.name,
    role: row.role as TokenRecord['role'],
    hash: row.hash,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

export function approvalFromRow(row: Selectable<ReleaseApprovalsTable>): ApprovalRecord {
  return {
    app: row.app,
    channel: row.channel,
    model: row.model,
    version: row.version,
    approver: row.approver,
    approvedAt: row.approved_at,
  };
}
