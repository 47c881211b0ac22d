import type { SignedRelease } from '@edgeship/protocol';
import type { Lineage, ReleaseRecord, RolloutMode, RolloutRecord } from './storage/types.ts';
import type { fleetReport } from './telemetry/fleet.ts';

/** An admin API error as the server sent it, or E_NETWORK when it could not be reached. */
export class AdminApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AdminApiError';
  }
}

export type ReleaseSummary = Omit<ReleaseRecord, 'signed' | 'modelCard'>;

export interface UploadProgress {
  chunksDone: number;
  chunksTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

/**
 * A typed client for the admin API, shared by the CLI, the fleet simulator and tests. Chunk
 * upload is resumable by construction: it asks which chunks the server lacks and sends only those.
 */
export class AdminClient {
  constructor(
    readonly server: string,
    private readonly token: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  whoami() {
    return this.call<{ name: string; role: string }>('GET', '/whoami');
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
    return this.call<{ releases: ReleaseSummary[] }>(
      'GET',
      `/releases${model ? `?model=${encodeURIComponent(model)}` : ''}`,
    );
  }

  getRelease(model: string, version: string) {
    return this.call<ReleaseRecord>('GET', `/releases/${model}/${version}`);
  }

  createRollout(input: {
    app: string;
    channel: string;
    model: string;
    release: string;
    shareBps: number;
    mode?: RolloutMode;
    control?: string | null;
  }) {
    return this.call<RolloutRecord>('POST', '/rollouts', input);
  }

  listRollouts(query: { app?: string; channel?: string; model?: string; state?: string } = {}) {
    const params = new URLSearchParams(Object.entries(query).filter(([, v]) => v) as [string, string][]);
    return this.call<{ rollouts: RolloutRecord[] }>('GET', `/rollouts?${params}`);
  }

  setShare(rolloutId: string, shareBps: number) {
    return this.call<RolloutRecord>('POST', `/rollouts/${rolloutId}/share`, { shareBps });
  }

  promote(rolloutId: string) {
    return this.call<RolloutRecord>('POST', `/rollouts/${rolloutId}/promote`);
  }

  halt(rolloutId: string, reason: string) {
    return this.call<RolloutRecord>('POST', `/rollouts/${rolloutId}/halt`, { reason });
  }

  promoteRelease(app: string, channel: string, model: string, release: string) {
    return this.call<{ production: string }>(
      'POST',
      `/apps/${app}/channels/${channel}/models/${model}/promote`,
      {
        release,
      },
    );
  }

  rollback(app: string, channel: string, model: string, reason: string) {
    return this.call<{ production: string }>(
      'POST',
      `/apps/${app}/channels/${channel}/models/${model}/rollback`,
      {
        reason,
      },
    );
  }

  channel(app: string, channel: string) {
    return this.call<{ app: string; channel: string; manifestVersion: number | null; models: unknown[] }>(
      'GET',
      `/apps/${app}/channels/${channel}`,
    );
  }

  /** The fleet's state from telemetry (viewer): versions in use, latency, errors, drift, shadows. */
  fleet(query: {
    app: string;
    channel: string;
    model?: string;
    since?: string;
    until?: string;
    step?: number;
  }) {
    const params = new URLSearchParams({ app: query.app, channel: query.channel });
    for (const key of ['model', 'since', 'until', 'step'] as const) {
      if (query[key] !== undefined) params.set(key, String(query[key]));
    }
    return this.call<FleetSummary>('GET', `/fleet?${params}`);
  }

  channels() {
    return this.call<{ channels: Array<{ app: string; channel: string }> }>('GET', '/channels');
  }

  audit(query: { app?: string; channel?: string; model?: string; limit?: number; before?: number } = {}) {
    const params = new URLSearchParams(
      Object.entries(query)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, String(v)]),
    );
    return this.call<{ entries: Array<Record<string, unknown>> }>('GET', `/audit?${params}`);
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
      });
    } catch (error) {
      throw new AdminApiError(0, 'E_NETWORK', `cannot reach ${this.server}: ${(error as Error).message}`);
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

/** GET /v1/admin/fleet's body (type-only: the client loads no server code). */
export type FleetSummary = Awaited<ReturnType<typeof fleetReport>>;
