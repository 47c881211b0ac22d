import type { SignedRelease } from '@edgeship/protocol';
import { EdgeshipError, isErrorCode, NetworkError } from '@edgeship/protocol/errors';
import type { TokenSummary } from './auth/token-admin.ts';
import type { RolloutInput } from './registry/service.ts';
import type {
  ApprovalRecord,
  AuditEntry,
  ChannelModelRecord,
  ChannelPolicy,
  ChannelPolicyRecord,
  Lineage,
  ReleaseRecord,
  RolloutRecord,
} from './storage/types.ts';
import type { fleetReport } from './telemetry/fleet.ts';

export type { TokenSummary } from './auth/token-admin.ts';

/**
 * An admin API error as the server sent it: its code, and the status it came with. A code this
 * client does not know (a newer server) is E_HTTP. Unreachable servers are a NetworkError.
 */
export class AdminApiError extends EdgeshipError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(isErrorCode(code) ? code : 'E_HTTP', message);
  }
}

export type ReleaseSummary = Omit<ReleaseRecord, 'signed' | 'modelCard'>;

/** A model on a channel as GET /apps/{app}/channels/{channel} reports it. */
export type ChannelModel = ChannelModelRecord & { rollout: RolloutRecord | null };

export interface ChannelState {
  app: string;
  channel: string;
  manifestVersion: number | null;
  models: ChannelModel[];
}

export interface UploadProgress {
  chunksDone: number;
  chunksTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

/**
 * A typed client for the admin API, shared by the CLI, the dashboard, the fleet simulator and
 * tests; browser-safe (its server imports are type-only). Chunk upload is resumable by
 * construction: it asks which chunks the server lacks and sends only those.
 */
export class AdminClient {
  constructor(
    readonly server: string,
    private readonly token: string,
    // A wrapper, not `fetch` itself: browsers refuse fetch called as another object's method.
    private readonly fetchImpl: typeof fetch = (input, init) => fetch(input, init),
  ) {}

  whoami() {
    return this.call<{ name: string; role: string; expiresAt: string | null }>('GET', '/whoami');
  }

  /** Admin: a new token; the answer's `token` is the only copy of it there will ever be. */
  createToken(input: { name: string; role: string; expiresInDays?: number | null }) {
    return this.call<TokenSummary & { token: string }>('POST', '/tokens', input);
  }

  listTokens() {
    return this.call<{ tokens: TokenSummary[] }>('GET', '/tokens');
  }

  revokeToken(id: string) {
    return this.call<TokenSummary>('POST', `/tokens/${enc(id)}/revoke`);
  }

  async uploadRelease(
    release: SignedRelease,
    files: Map<string, Uint8Array>,
    opts: { concurrency?: number; onProgress?: (p: UploadProgress) => void } = {},
  ): Promise<{ chunksUploaded: number; bytesUploaded: number }> {
    const chunks = new Map<string, Uint8Array>();
    for (const file of release.signed.files) {
      const bytes = files.get(file.path);
      if (!bytes) throw new Error(`no bytes for ${file.path}`);
      let offset = 0;
      for (const chunk of file.chunks) {
        chunks.set(chunk.sha256, bytes.subarray(offset, offset + chunk.size));
        offset += chunk.size;
      }
    }
    const { missing } = await this.call<{ missing: string[] }>('POST', '/chunks/missing', {
      hashes: [...chunks.keys()],
    });
    const bytesTotal = missing.reduce((n, h) => n + chunks.get(h)!.length, 0);
    const progress: UploadProgress = { chunksDone: 0, chunksTotal: missing.length, bytesDone: 0, bytesTotal };
    opts.onProgress?.({ ...progress });
    const queue = [...missing];
    const worker = async () => {
      for (let hash = queue.shift(); hash; hash = queue.shift()) {
        const bytes = chunks.get(hash)!;
        await this.call('PUT', `/chunks/${hash}`, bytes);
        progress.chunksDone += 1;
        progress.bytesDone += bytes.length;
        opts.onProgress?.({ ...progress });
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, queue.length) }, worker));
    return { chunksUploaded: missing.length, bytesUploaded: bytesTotal };
  }

  registerRelease(input: {
    release: SignedRelease;
    metrics?: Record<string, number>;
    lineage?: Lineage;
    modelCard?: string;
  }) {
    return this.call<ReleaseSummary>('POST', '/releases', input);
  }

  listReleases(model?: string) {
    return this.call<{ releases: ReleaseSummary[] }>('GET', `/releases${query({ model })}`);
  }

  getRelease(model: string, version: string) {
    return this.call<ReleaseRecord>('GET', `/releases/${enc(model)}/${enc(version)}`);
  }

  createRollout(input: RolloutInput) {
    return this.call<RolloutRecord>('POST', '/rollouts', input);
  }

  listRollouts(filter: { app?: string; channel?: string; model?: string; state?: string } = {}) {
    return this.call<{ rollouts: RolloutRecord[] }>('GET', `/rollouts${query(filter)}`);
  }

  setShare(rolloutId: string, shareBps: number) {
    return this.call<RolloutRecord>('POST', `/rollouts/${enc(rolloutId)}/share`, { shareBps });
  }

  promote(rolloutId: string) {
    return this.call<RolloutRecord>('POST', `/rollouts/${enc(rolloutId)}/promote`);
  }

  halt(rolloutId: string, reason: string) {
    return this.call<RolloutRecord>('POST', `/rollouts/${enc(rolloutId)}/halt`, { reason });
  }

  promoteRelease(app: string, channel: string, model: string, release: string) {
    return this.call<{ production: string }>('POST', `${modelPath(app, channel, model)}/promote`, {
      release,
    });
  }

  rollback(app: string, channel: string, model: string, reason: string) {
    return this.call<{ production: string }>('POST', `${modelPath(app, channel, model)}/rollback`, {
      reason,
    });
  }

  channel(app: string, channel: string) {
    return this.call<ChannelState>('GET', `/apps/${enc(app)}/channels/${enc(channel)}`);
  }

  /** The fleet's state from telemetry (viewer): versions in use, latency, errors, drift, shadows. */
  fleet(filter: {
    app: string;
    channel: string;
    model?: string;
    since?: string;
    until?: string;
    step?: number;
  }) {
    return this.call<FleetSummary>('GET', `/fleet${query(filter)}`);
  }

  channels() {
    return this.call<{ channels: Array<{ app: string; channel: string }> }>('GET', '/channels');
  }

  audit(filter: { app?: string; channel?: string; model?: string; limit?: number; before?: number } = {}) {
    return this.call<{ entries: AuditEntry[] }>('GET', `/audit${query(filter)}`);
  }

  /** Any admin path (e.g. fleet statistics); the same error handling. */
  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    let payload: BodyInit | undefined;
    if (body instanceof Uint8Array) {
      headers['content-type'] = 'application/octet-stream';
      payload = body as Uint8Array<ArrayBuffer>;
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.server.replace(/\/$/, '')}/v1/admin${path}`, {
        method,
        headers,
        body: payload,
        // Admin reads are live state: never answered from the HTTP cache.
        cache: 'no-store',
      });
    } catch (error) {
      throw new NetworkError(`cannot reach ${this.server}: ${(error as Error).message}`, { cause: error });
    }
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // fall through: a non-JSON answer (a proxy's error page) is reported by status
    }
    if (!response.ok) {
      const error = (json as { error?: { code?: string; message?: string } } | null)?.error;
      throw new AdminApiError(
        response.status,
        error?.code ?? 'E_HTTP',
        error?.message ?? `${method} ${path} answered ${response.status}`,
      );
    }
    return json as T;
  }
}

const enc = encodeURIComponent;
const modelPath = (app: string, channel: string, model: string) =>
  `/apps/${enc(app)}/channels/${enc(channel)}/models/${enc(model)}`;

/** A query string of the defined parameters ('' when there are none). */
function query(params: Record<string, string | number | undefined>): string {
  const entries = Object.entries(params).filter((e): e is [string, string | number] => e[1] !== undefined);
  return entries.length === 0 ? '' : `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)]))}`;
}

/** GET /v1/admin/fleet's body (type-only: the client loads no server code). */
export type FleetSummary = Awaited<ReturnType<typeof fleetReport>>;

// --- Registry governance (issue 18 item 6): approvals and channel policies. Kept apart from the
// class, which is being regenerated over openapi-fetch; these only use its `call`.

/** Approve releases for a channel's production and read or set the channel's policy. */
export function governance(client: AdminClient) {
  const channelPath = (app: string, channel: string) => `/apps/${enc(app)}/channels/${enc(channel)}`;
  return {
    /** Operator: approve `model@version` for app/channel (E_POLICY when the policy refuses this approver). */
    approve(app: string, channel: string, model: string, version: string) {
      return client.call<ApprovalRecord>(
        'POST',
        `${modelPath(app, channel, model)}/releases/${enc(version)}/approve`,
      );
    },
    approvals(model: string, version: string) {
      return client.call<{ approvals: ApprovalRecord[] }>(
        'GET',
        `/releases/${enc(model)}/${enc(version)}/approvals`,
      );
    },
    policy(app: string, channel: string) {
      return client.call<ChannelPolicyView>('GET', `${channelPath(app, channel)}/policy`);
    },
    /** Admin: set the channel's promotion policy. */
    setPolicy(app: string, channel: string, policy: ChannelPolicy) {
      return client.call<ChannelPolicyView>('PUT', `${channelPath(app, channel)}/policy`, policy);
    },
  };
}

/** GET .../policy: the stored policy, or the default (nothing required) with null author. */
export type ChannelPolicyView = Omit<ChannelPolicyRecord, 'updatedBy' | 'updatedAt'> & {
  updatedBy: string | null;
  updatedAt: string | null;
};
