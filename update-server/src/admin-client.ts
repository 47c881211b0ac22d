import type { SignedKeySet, SignedRelease } from '@edgeship/protocol';
import { EdgeshipError, isErrorCode, NetworkError } from '@edgeship/protocol/errors';
import type { TokenSummary } from './auth/token-admin.ts';
import type { RolloutInput } from './registry/service.ts';
import type {
  AuditEntry,
  ChannelModelRecord,
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

/** Reads `size` bytes at `offset` of the release file `path` (uploadRelease from disk). */
export type ChunkReader = (path: string, offset: number, size: number) => Promise<Uint8Array>;

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

  /** The root-signed key set the server serves devices (`GET /v1/keyset`, public). */
  async keySet(): Promise<SignedKeySet> {
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.server.replace(/\/$/, '')}/v1/keyset`, { cache: 'no-store' });
    } catch (error) {
      throw new AdminApiError(0, 'E_NETWORK', `cannot reach ${this.server}: ${(error as Error).message}`);
    }
    if (!response.ok)
      throw new AdminApiError(response.status, 'E_HTTP', `GET /v1/keyset answered ${response.status}`);
    return (await response.json()) as SignedKeySet;
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

  /**
   * Uploads the release's chunks the server lacks. `files` holds each file's bytes, or reads a
   * chunk's bytes on demand (a file on disk), so a large model is never held whole in memory.
   */
  async uploadRelease(
    release: SignedRelease,
    files: Map<string, Uint8Array> | ChunkReader,
    opts: { concurrency?: number; onProgress?: (p: UploadProgress) => void } = {},
  ): Promise<{ chunksUploaded: number; bytesUploaded: number }> {
    const read: ChunkReader =
      typeof files === 'function'
        ? files
        : async (path, offset, size) => files.get(path)!.subarray(offset, offset + size);
    const chunks = new Map<string, { path: string; offset: number; size: number }>();
    for (const file of release.signed.files) {
      if (typeof files !== 'function' && !files.has(file.path)) throw new Error(`no bytes for ${file.path}`);
      let offset = 0;
      for (const chunk of file.chunks) {
        if (!chunks.has(chunk.sha256))
          chunks.set(chunk.sha256, { path: file.path, offset, size: chunk.size });
        offset += chunk.size;
      }
    }
    const { missing } = await this.call<{ missing: string[] }>('POST', '/chunks/missing', {
      hashes: [...chunks.keys()],
    });
    const bytesTotal = missing.reduce((n, h) => n + chunks.get(h)!.size, 0);
    const progress: UploadProgress = { chunksDone: 0, chunksTotal: missing.length, bytesDone: 0, bytesTotal };
    opts.onProgress?.({ ...progress });
    const queue = [...missing];
    const worker = async () => {
      for (let hash = queue.shift(); hash; hash = queue.shift()) {
        const { path, offset, size } = chunks.get(hash)!;
        await this.call('PUT', `/chunks/${hash}`, await read(path, offset, size));
        progress.chunksDone += 1;
        progress.bytesDone += size;
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

  getRollout(rolloutId: string) {
    return this.call<RolloutRecord>('GET', `/rollouts/${enc(rolloutId)}`);
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
