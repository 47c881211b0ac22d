/**
 * The admin API as the dashboard uses it. Record types come from the server's storage contract
 * as type-only imports: erased from the bundle, so no server code reaches the page, and a change
 * on the server shows up here as a type error rather than a silent skew.
 */
import type { AuditEntry, RolloutRecord, RolloutState } from '../../src/storage/types.ts';

export type { AuditEntry, RolloutState };
export type Rollout = RolloutRecord;

export interface ChannelModel {
  app: string;
  channel: string;
  model: string;
  production: string | null;
  previousProduction: string | null;
  updatedAt: string;
  rollout: Rollout | null;
}

export interface ChannelState {
  app: string;
  channel: string;
  manifestVersion: number | null;
  models: ChannelModel[];
}

export interface ReleaseSummary {
  model: string;
  version: string;
  format: 'onnx' | 'tfjs';
  stage: 'staging' | 'production' | 'archived';
  totalBytes: number;
  metrics: Record<string, number>;
  lineage: Record<string, unknown>;
  createdBy: string;
  createdAt: string;
}

export interface ReleaseDetail extends ReleaseSummary {
  modelCard: string;
  signed: {
    signed: { files?: Array<{ path: string; size: number; sha256: string }> } & Record<string, unknown>;
  };
}

/** An error with the server's stable code (E_FORBIDDEN, E_INVALID_STATE, …), or E_NETWORK. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export class AdminApi {
  constructor(
    private readonly token: string,
    private readonly base = '/v1/admin',
  ) {}

  whoami() {
    return this.call<{ name: string; role: string }>('GET', '/whoami');
  }
  channels() {
    return this.call<{ channels: Array<{ app: string; channel: string }> }>('GET', '/channels');
  }
  channel(app: string, channel: string) {
    return this.call<ChannelState>('GET', `/apps/${enc(app)}/channels/${enc(channel)}`);
  }
  releases(model?: string) {
    return this.call<{ releases: ReleaseSummary[] }>('GET', `/releases${query({ model })}`);
  }
  release(model: string, version: string) {
    return this.call<ReleaseDetail>('GET', `/releases/${enc(model)}/${enc(version)}`);
  }
  rollouts(filter: { app?: string; channel?: string; model?: string } = {}) {
    return this.call<{ rollouts: Rollout[] }>('GET', `/rollouts${query(filter)}`);
  }
  audit(filter: { app?: string; channel?: string; model?: string; limit?: number; before?: number } = {}) {
    return this.call<{ entries: AuditEntry[] }>('GET', `/audit${query(filter)}`);
  }
  fleet(filter: { app: string; channel: string; model?: string; since?: string }) {
    return this.call<unknown>('GET', `/fleet${query(filter)}`);
  }
  setShare(id: string, shareBps: number) {
    return this.call<Rollout>('POST', `/rollouts/${enc(id)}/share`, { shareBps });
  }
  promoteRollout(id: string) {
    return this.call<Rollout>('POST', `/rollouts/${enc(id)}/promote`);
  }
  halt(id: string, reason: string) {
    return this.call<Rollout>('POST', `/rollouts/${enc(id)}/halt`, { reason });
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

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (error) {
      throw new ApiError(0, 'E_NETWORK', `the server cannot be reached: ${(error as Error).message}`);
    }
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // A proxy's HTML error page: reported by its status below.
    }
    if (!response.ok) {
      const error = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      throw new ApiError(
        response.status,
        typeof error?.code === 'string' ? error.code : 'E_HTTP',
        typeof error?.message === 'string' ? error.message : `${method} ${path} answered ${response.status}`,
      );
    }
    return json as T;
  }
}

const enc = encodeURIComponent;
const modelPath = (app: string, channel: string, model: string) =>
  `/apps/${enc(app)}/channels/${enc(channel)}/models/${enc(model)}`;

function query(params: Record<string, string | number | undefined>): string {
  const entries = Object.entries(params).filter((e): e is [string, string | number] => e[1] !== undefined);
  return entries.length === 0 ? '' : `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)]))}`;
}
