import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import type { ManifestRecord, RegistryStore } from '../storage/types.ts';
import { hasCurrentSchema } from './manifest-builder.ts';
import type { RegistryService } from './service.ts';

/** A served manifest with everything a request needs, computed once per version. */
export interface CachedManifest {
  record: ManifestRecord;
  /** record.createdAt as epoch ms (parsed once, not per request). */
  createdMs: number;
  identity: Uint8Array;
  gzip: Uint8Array;
  br: Uint8Array;
  /**
   * A strong ETag per representation: the stored one for the identity bytes, with `-br` or
   * `-gzip` inside the quotes for the compressed ones (RFC 9110 §8.8.3: the encoding is part of
   * the representation). Any of them validates: it names the same signed version.
   */
  etags: Record<Encoding, string>;
}

export type Encoding = 'br' | 'gzip' | 'identity';

interface Entry {
  manifest: CachedManifest;
  /** When the database last confirmed this is the newest version (ms). */
  checkedAt: number;
}

export interface ManifestCacheOptions {
  /**
   * How long a copy is served without asking the database whether a newer version exists. Other
   * processes' changes are served within this; this process's own changes at once (invalidated).
   */
  recheckMs?: number;
  /** The clock that decides re-signing (the routes' clock); rechecks use wall time. */
  now?: () => number;
}

export const DEFAULT_MANIFEST_RECHECK_MS = 500;

/**
 * Signed manifests per app and channel held in memory with their compressed forms. A copy older
 * than `recheckMs` is confirmed by one index-only version read (concurrent requests share it), and
 * reloaded only when the version moved. Re-signing before expiry stays where it was
 * (RegistryService.refreshManifest, under the channel lock, so any number of processes produce
 * one new version); the cache only decides when to ask.
 */
export class ManifestCache {
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<CachedManifest | null>>();
  /** Bumped by every local publish: a load that started before one does not store its result. */
  private epoch = 0;
  private readonly recheckMs: number;
  private readonly now: () => number;

  constructor(
    private readonly registry: RegistryStore,
    private readonly service: RegistryService,
    options: ManifestCacheOptions = {},
  ) {
    this.recheckMs = options.recheckMs ?? DEFAULT_MANIFEST_RECHECK_MS;
    this.now = options.now ?? Date.now;
    service.onManifestPublished((app, channel) => this.invalidate(keyOf(app, channel)));
  }

  /** Synchronous when the copy is fresh: the hot path awaits nothing. */
  peek(app: string, channel: string): CachedManifest | undefined {
    const entry = this.entries.get(keyOf(app, channel));
    if (!entry) return undefined;
    if (Date.now() - entry.checkedAt >= this.recheckMs || this.needsResign(entry.manifest, this.now()))
      return undefined;
    return entry.manifest;
  }

  /** The newest manifest (re-signed first when half its lifetime has passed), or null. */
  get(app: string, channel: string): Promise<CachedManifest | null> {
    const key = keyOf(app, channel);
    let load = this.pending.get(key);
    if (!load) {
      const started = this.load(key, app, channel).finally(() => {
        if (this.pending.get(key) === started) this.pending.delete(key);
      });
      load = started;
      this.pending.set(key, load);
    }
    return load;
  }

  private invalidate(key: string): void {
    this.epoch += 1;
    this.entries.delete(key);
    this.pending.delete(key); // later requests must not join a read that began before the change
  }

  private async load(key: string, app: string, channel: string): Promise<CachedManifest | null> {
    const started = Date.now();
    const epoch = this.epoch;
    const entry = this.entries.get(key);
    if (entry && !this.needsResign(entry.manifest, this.now())) {
      const version = await this.registry.latestManifestVersion(app, channel);
      if (version === entry.manifest.record.version) {
        // Only if nothing invalidated it meanwhile (a local publish deletes the entry).
        if (this.epoch === epoch) entry.checkedAt = started;
        return entry.manifest;
      }
    }
    let record = await this.registry.latestManifest(app, channel);
    if (!record) return null;
    if (this.needsResignRecord(record, this.now())) {
      record = (await this.service.refreshManifest(app, channel)) ?? record;
    }
    const manifest = prepare(record);
    if (this.epoch === epoch) this.entries.set(key, { manifest, checkedAt: started });
    return manifest;
  }

  private needsResign(manifest: CachedManifest, at: number): boolean {
    return manifest.createdMs + this.service.manifestTtlMs / 2 <= at;
  }

  /** Re-signed as a new version once half its lifetime has passed, or in an older schema (see refreshManifest). */
  private needsResignRecord(record: ManifestRecord, at: number): boolean {
    return Date.parse(record.createdAt) + this.service.manifestTtlMs / 2 <= at || !hasCurrentSchema(record);
  }
}

function keyOf(app: string, channel: string): string {
  return `${app}\u0000${channel}`;
}

function prepare(record: ManifestRecord): CachedManifest {
  const identity = new TextEncoder().encode(record.body);
  return {
    record,
    createdMs: Date.parse(record.createdAt),
    identity,
    gzip: new Uint8Array(gzipSync(identity, { level: 9 })),
    br: new Uint8Array(
      brotliCompressSync(identity, {
        params: {
          [constants.BROTLI_PARAM_QUALITY]: 11,
          [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
          [constants.BROTLI_PARAM_SIZE_HINT]: identity.length,
        },
      }),
    ),
    etags: {
      identity: record.etag,
      br: `${record.etag.slice(0, -1)}-br"`,
      gzip: `${record.etag.slice(0, -1)}-gzip"`,
    },
  };
}

/** The best encoding the client accepts (RFC 9110 §12.5.3; q=0 refuses one). */
export function pickEncoding(acceptEncoding: string | undefined): Encoding {
  if (!acceptEncoding) return 'identity';
  let br = false;
  let gzip = false;
  for (const part of acceptEncoding.split(',')) {
    const [name = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.find((p) => p.trim().startsWith('q='));
    if (q !== undefined && Number(q.trim().slice(2)) === 0) continue;
    if (name === 'br') br = true;
    else if (name === 'gzip' || name === 'x-gzip') gzip = true;
    else if (name === '*') {
      br = true;
      gzip = true;
    }
  }
  return br ? 'br' : gzip ? 'gzip' : 'identity';
}
