import type { SignedKeySet, SignedRelease } from '@edgeship/protocol';
import {
  EdgeshipError,
  HashMismatchError,
  isErrorCode,
  LengthMismatchError,
  NetworkError,
} from '@edgeship/protocol/errors';
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './admin-api.gen.ts';
import type { RolloutInput } from './registry/service.ts';
import type { fleetReport } from './telemetry/fleet-report.ts';

type Schemas = components['schemas'];
export type ReleaseSummary = Schemas['ReleaseSummary'];
/** One release in full: the summary, the signed document as uploaded, its model card. */
export type Release = Schemas['Release'];
export type Rollout = Schemas['Rollout'];
export type TokenSummary = Schemas['TokenSummary'];
export type CreatedToken = Schemas['CreatedToken'];
export type AuditEntry = Schemas['AuditEntry'];
export type ChannelState = Schemas['ChannelState'];
export type ChannelAlerts = Schemas['ChannelAlerts'];
export type RolloutSchedule = Schemas['RolloutSchedule'];
/** A model on a channel as GET /apps/{app}/channels/{channel} reports it. */
export type ChannelModel = ChannelState['models'][number];
type Lineage = Schemas['PublishRelease']['lineage'];

/** An experiment as the server reports it (type-only, like FleetSummary). */
export type ExperimentView = import('./experiment/experiments.ts').ExperimentView;

/** GET /v1/admin/fleet's body (type-only: the client loads no server code; the document says "an object"). */
export type FleetSummary = Awaited<ReturnType<typeof fleetReport>>;

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

/** Reads `size` bytes at `offset` of the release file `path` (uploadRelease from disk). */
export type ChunkReader = (path: string, offset: number, size: number) => Promise<Uint8Array>;

export interface UploadProgress {
  chunksDone: number;
  chunksTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

/** What openapi-fetch answers: the parsed body of a success or of a failure, and the response. */
type Answer<T> = { data?: T; error?: unknown; response: Response };

/**
 * A typed client for the admin API, shared by the CLI, the dashboard, the fleet simulator and
 * tests; browser-safe (its server imports are type-only). A thin layer over a client generated
 * from the OpenAPI document (openapi-fetch over admin-api.gen.ts), so a route and its call cannot
 * drift apart: what it adds is the errors, chunked upload and the method names callers use.
 * Chunk upload is resumable by construction: it asks which chunks the server lacks, sends only those.
 */
export class AdminClient {
  private readonly api: Client<paths>;

  constructor(
    readonly server: string,
    token: string,
    // A wrapper, not `fetch` itself: browsers refuse fetch called as another object's method.
    private readonly fetchImpl: typeof fetch = (input, init) => fetch(input, init),
  ) {
    this.api = createClient<paths>({
      baseUrl: `${server.replace(/\/$/, '')}/v1/admin`,
      headers: { authorization: `Bearer ${token}` },
      // Admin reads are live state: never answered from the HTTP cache.
      cache: 'no-store',
      fetch: async (request) => {
        try {
          return await fetchImpl(request);
        } catch (error) {
          throw new NetworkError(`cannot reach ${server}: ${(error as Error).message}`, { cause: error });
        }
      },
    });
  }

  whoami() {
    return this.send('GET /whoami', this.api.GET('/whoami'));
  }

  /** The root-signed key set the server serves devices (`GET /v1/keyset`, public). */
  async keySet(): Promise<SignedKeySet> {
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.server.replace(/\/$/, '')}/v1/keyset`, { cache: 'no-store' });
    } catch (error) {
      throw new NetworkError(`cannot reach ${this.server}: ${(error as Error).message}`, { cause: error });
    }
    if (!response.ok)
      throw new AdminApiError(response.status, 'E_HTTP', `GET /v1/keyset answered ${response.status}`);
    return (await response.json()) as SignedKeySet;
  }

  /** Admin: a new token; the answer's `token` is the only copy of it there will ever be. */
  createToken(input: { name: string; role: string; expiresInDays?: number | null }) {
    // Any string: the server checks the role and answers E_VALIDATION (the CLI passes flags through).
    return this.send('POST /tokens', this.api.POST('/tokens', { body: input as Schemas['CreateToken'] }));
  }

  listTokens() {
    return this.send('GET /tokens', this.api.GET('/tokens'));
  }

  revokeToken(id: string) {
    return this.send(
      'POST /tokens/{id}/revoke',
      this.api.POST('/tokens/{id}/revoke', { params: { path: { id } } }),
    );
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
    const { missing } = await this.send(
      'POST /chunks/missing',
      this.api.POST('/chunks/missing', { body: { hashes: [...chunks.keys()] } }),
    );
    const bytesTotal = missing.reduce((n, h) => n + chunks.get(h)!.size, 0);
    const progress: UploadProgress = { chunksDone: 0, chunksTotal: missing.length, bytesDone: 0, bytesTotal };
    opts.onProgress?.({ ...progress });
    const queue = [...missing];
    const worker = async () => {
      for (let hash = queue.shift(); hash; hash = queue.shift()) {
        const { path, offset, size } = chunks.get(hash)!;
        const bytes = await read(path, offset, size);
        await this.send(
          'PUT /chunks/{sha256}',
          this.api.PUT('/chunks/{sha256}', {
            params: { path: { sha256: hash } },
            // The document types binary bodies as strings; the bytes go out as they are.
            body: bytes as unknown as string,
            bodySerializer: (body) => body as unknown as BodyInit,
            headers: { 'content-type': 'application/octet-stream' },
          }),
        );
        progress.chunksDone += 1;
        progress.bytesDone += size;
        opts.onProgress?.({ ...progress });
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, queue.length) }, worker));
    return { chunksUploaded: missing.length, bytesUploaded: bytesTotal };
  }

  /**
   * Downloads a release's files from the server's public chunk route, each chunk and each whole
   * file checked against the hashes and sizes the release names (E_HASH, E_LENGTH): the bytes
   * are the ones its publisher signed, whatever the server is. Verify the signature first.
   */
  async downloadRelease(release: SignedRelease): Promise<Map<string, Uint8Array>> {
    const files = new Map<string, Uint8Array>();
    for (const file of release.signed.files) {
      const bytes = new Uint8Array(file.size);
      let offset = 0;
      for (const chunk of file.chunks) {
        const url = `${this.server.replace(/\/$/, '')}/v1/chunks/${chunk.sha256}`;
        let response: Response;
        try {
          response = await this.fetchImpl(url);
        } catch (error) {
          throw new NetworkError(`cannot reach ${this.server}: ${(error as Error).message}`, {
            cause: error,
          });
        }
        if (!response.ok) {
          throw new AdminApiError(
            response.status,
            'E_HTTP',
            `GET /v1/chunks/${chunk.sha256} answered ${response.status}`,
          );
        }
        const got = new Uint8Array(await response.arrayBuffer());
        if (got.length !== chunk.size) {
          throw new LengthMismatchError(
            `chunk ${chunk.sha256} of ${file.path} is ${got.length} bytes, the release says ${chunk.size}`,
          );
        }
        if ((await sha256Hex(got)) !== chunk.sha256) {
          throw new HashMismatchError(`chunk ${chunk.sha256} of ${file.path} does not match its hash`);
        }
        bytes.set(got, offset);
        offset += got.length;
      }
      if ((await sha256Hex(bytes)) !== file.sha256) {
        throw new HashMismatchError(`${file.path} does not match the hash its release names`);
      }
      files.set(file.path, bytes);
    }
    return files;
  }

  registerRelease(input: {
    release: SignedRelease;
    metrics?: Record<string, number>;
    lineage?: Lineage;
    modelCard?: string;
  }) {
    return this.send('POST /releases', this.api.POST('/releases', { body: input }));
  }

  listReleases(model?: string) {
    return this.send('GET /releases', this.api.GET('/releases', { params: { query: { model } } }));
  }

  getRelease(model: string, version: string) {
    return this.send(
      'GET /releases/{model}/{version}',
      this.api.GET('/releases/{model}/{version}', { params: { path: { model, version } } }),
    );
  }

  createRollout(input: RolloutInput) {
    return this.send('POST /rollouts', this.api.POST('/rollouts', { body: input }));
  }

  /** Starts an experiment (experiment/experiments.ts): its estimate before start comes back. */
  async startExperiment(input: Schemas['CreateExperiment']): Promise<ExperimentView> {
    return (await this.send('POST /experiments', this.api.POST('/experiments', { body: input }))) as never;
  }

  async experiment(id: string): Promise<ExperimentView> {
    return (await this.send(
      'GET /experiments/{id}',
      this.api.GET('/experiments/{id}', { params: { path: { id } } }),
    )) as never;
  }

  async experiments(
    filter: { app?: string; channel?: string; model?: string } = {},
  ): Promise<ExperimentView[]> {
    const body = await this.send(
      'GET /experiments',
      this.api.GET('/experiments', { params: { query: filter } }),
    );
    return body.experiments as never;
  }

  listRollouts(filter: { app?: string; channel?: string; model?: string; state?: string } = {}) {
    const query = filter as { state?: Rollout['state'] }; // the server checks the state
    return this.send('GET /rollouts', this.api.GET('/rollouts', { params: { query } }));
  }

  getRollout(id: string) {
    return this.send('GET /rollouts/{id}', this.api.GET('/rollouts/{id}', { params: { path: { id } } }));
  }

  setShare(rolloutId: string, shareBps: number) {
    return this.send(
      'POST /rollouts/{id}/share',
      this.api.POST('/rollouts/{id}/share', { params: { path: { id: rolloutId } }, body: { shareBps } }),
    );
  }

  promote(rolloutId: string) {
    return this.send(
      'POST /rollouts/{id}/promote',
      this.api.POST('/rollouts/{id}/promote', { params: { path: { id: rolloutId } } }),
    );
  }

  halt(rolloutId: string, reason: string) {
    return this.send(
      'POST /rollouts/{id}/halt',
      this.api.POST('/rollouts/{id}/halt', { params: { path: { id: rolloutId } }, body: { reason } }),
    );
  }

  promoteRelease(app: string, channel: string, model: string, release: string) {
    const path = '/apps/{app}/channels/{channel}/models/{model}/promote';
    return this.send(
      `POST ${path}`,
      this.api.POST(path, { params: { path: { app, channel, model } }, body: { release } }),
    );
  }

  rollback(app: string, channel: string, model: string, reason: string) {
    const path = '/apps/{app}/channels/{channel}/models/{model}/rollback';
    return this.send(
      `POST ${path}`,
      this.api.POST(path, { params: { path: { app, channel, model } }, body: { reason } }),
    );
  }

  channel(app: string, channel: string) {
    return this.send(
      'GET /apps/{app}/channels/{channel}',
      this.api.GET('/apps/{app}/channels/{channel}', { params: { path: { app, channel } } }),
    );
  }

  /** The fleet's state from telemetry (viewer): versions in use, latency, errors, drift, shadows. */
  async fleet(filter: {
    app: string;
    channel: string;
    model?: string;
    since?: string;
    until?: string;
    step?: number;
    /** Seconds before a device not on its target release counts as stuck. */
    grace?: number;
  }): Promise<FleetSummary> {
    const report = await this.send('GET /fleet', this.api.GET('/fleet', { params: { query: filter } }));
    return report as unknown as FleetSummary;
  }

  channels() {
    return this.send('GET /channels', this.api.GET('/channels'));
  }

  audit(filter: { app?: string; channel?: string; model?: string; limit?: number; before?: number } = {}) {
    return this.send('GET /audit', this.api.GET('/audit', { params: { query: filter } }));
  }

  approveRelease(app: string, channel: string, model: string, version: string) {
    return this.send(
      'POST .../releases/{version}/approve',
      this.api.POST('/apps/{app}/channels/{channel}/models/{model}/releases/{version}/approve', {
        params: { path: { app, channel, model, version } },
      }),
    );
  }

  approvals(model: string, version: string) {
    return this.send(
      'GET /releases/{model}/{version}/approvals',
      this.api.GET('/releases/{model}/{version}/approvals', { params: { path: { model, version } } }),
    );
  }

  channelPolicy(app: string, channel: string) {
    return this.send(
      'GET /apps/{app}/channels/{channel}/policy',
      this.api.GET('/apps/{app}/channels/{channel}/policy', { params: { path: { app, channel } } }),
    );
  }

  setChannelPolicy(app: string, channel: string, policy: Schemas['ChannelPolicy']) {
    return this.send(
      'PUT /apps/{app}/channels/{channel}/policy',
      this.api.PUT('/apps/{app}/channels/{channel}/policy', {
        params: { path: { app, channel } },
        body: policy,
      }),
    );
  }

  /** A channel's alert thresholds on its production releases, and its alert episodes (viewer). */
  channelAlerts(app: string, channel: string) {
    return this.send(
      'GET /apps/{app}/channels/{channel}/alerts',
      this.api.GET('/apps/{app}/channels/{channel}/alerts', { params: { path: { app, channel } } }),
    );
  }

  /** Sets a channel's alert thresholds (operator; audited as `channel.alerts`). */
  setChannelAlerts(app: string, channel: string, config: Schemas['AlertConfigBody']) {
    return this.send(
      'PUT /apps/{app}/channels/{channel}/alerts',
      this.api.PUT('/apps/{app}/channels/{channel}/alerts', {
        params: { path: { app, channel } },
        body: config,
      }),
    );
  }

  /** Puts a running canary on a schedule of stages (operator). */
  scheduleRollout(rolloutId: string, schedule: Schemas['RolloutScheduleBody']) {
    return this.send(
      'POST /rollouts/{id}/schedule',
      this.api.POST('/rollouts/{id}/schedule', { params: { path: { id: rolloutId } }, body: schedule }),
    );
  }

  rolloutSchedule(rolloutId: string) {
    return this.send(
      'GET /rollouts/{id}/schedule',
      this.api.GET('/rollouts/{id}/schedule', { params: { path: { id: rolloutId } } }),
    );
  }

  /** The success body, or the server's `{ error: { code, message } }` as an AdminApiError. */
  private async send<T>(what: string, call: Promise<Answer<T>>): Promise<T> {
    const { data, error, response } = await call;
    if (!response.ok) {
      // A non-JSON answer (a proxy's error page) is reported by its status.
      const body = (error as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new AdminApiError(
        response.status,
        body?.code ?? 'E_HTTP',
        body?.message ?? `${what} answered ${response.status}`,
      );
    }
    return data as T;
  }
}

export type Approval = Schemas['Approval'];
export type ChannelPolicy = Schemas['ChannelPolicy'];
/** GET .../policy: the stored policy, or the default (nothing required) with null author. */
export type ChannelPolicyView = Schemas['ChannelPolicyRecord'];

/**
 * Registry governance (approvals and channel policies) over the same generated client: operator
 * approvals of a release for a channel, and the admin's promotion policy per channel.
 */
export function governance(client: AdminClient) {
  return {
    /** Operator: approve `model@version` for app/channel (E_POLICY when the policy refuses this approver). */
    approve: (app: string, channel: string, model: string, version: string) =>
      client.approveRelease(app, channel, model, version),
    approvals: (model: string, version: string) => client.approvals(model, version),
    policy: (app: string, channel: string) => client.channelPolicy(app, channel),
    /** Admin: set the channel's promotion policy. */
    setPolicy: (app: string, channel: string, policy: ChannelPolicy) =>
      client.setChannelPolicy(app, channel, policy),
  };
}

/** Lowercase hex SHA-256 through WebCrypto (this module stays free of protocol's zod schemas). */
async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}
