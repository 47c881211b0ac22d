import type { Logger } from 'pino';
import type { LeaderTask } from '../cluster/leader.ts';
import type { RegistryStore } from '../storage/types.ts';
import type { RegistryService } from './service.ts';

export interface ResignerOptions {
  /** How often the leader looks for manifests due for re-signing. */
  intervalMs: number;
  /** Share of the manifest lifetime after which it is re-signed (before the request path's half). */
  atLifetimeShare?: number;
  now?: () => number;
}

export const DEFAULT_RESIGN_INTERVAL_MS = 60_000;
const DEFAULT_LIFETIME_SHARE = 0.4;

/**
 * Re-signs every channel's manifest before it expires, on the leader only. Devices refuse an
 * expired manifest (the freeze-attack check), so a channel nobody changes still needs a fresh
 * signature; the request path re-signs at half the lifetime as a fallback (registry/manifest-cache.ts),
 * this comes earlier so that, with a leader alive, no device request waits for a signature.
 * A manifest signed under an older key set than the server's (the keys were rotated and the
 * processes restarted) is re-signed at once, so the retired online key leaves service within an
 * interval rather than at the next change.
 */
export class ManifestResigner implements LeaderTask {
  readonly name = 'manifest-resigner';
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private readonly share: number;
  private readonly now: () => number;

  constructor(
    private readonly registry: RegistryStore,
    private readonly service: RegistryService,
    private readonly log: Logger,
    private readonly opts: ResignerOptions,
  ) {
    this.share = opts.atLifetimeShare ?? DEFAULT_LIFETIME_SHARE;
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (this.timer || this.opts.intervalMs <= 0) return;
    void this.runOnce();
    this.timer = setInterval(() => void this.runOnce(), this.opts.intervalMs);
    this.timer.unref();
  }

  async pause(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Re-signs the manifests past their share of life; resolves to how many channels moved to a new version. */
  runOnce(): Promise<number> {
    this.running ??= this.resignDue()
      .catch((error) => {
        this.log.warn({ err: error }, 'manifest re-signing failed; retrying next interval');
        return 0;
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private async resignDue(): Promise<number> {
    const afterMs = this.service.manifestTtlMs * this.share;
    let resigned = 0;
    const keySetVersion = this.service.keySet.version;
    for (const { app, channel } of await this.registry.listChannels()) {
      const latest = await this.registry.latestManifest(app, channel);
      if (!latest) continue;
      const rotated = signedKeySetVersion(latest.body) < keySetVersion;
      // Checked again under the channel lock inside refreshManifest; this only skips the lock.
      if (!rotated && Date.parse(latest.createdAt) + afterMs > this.now()) continue;
      const fresh = await this.service.refreshManifest(app, channel, rotated ? 0 : afterMs);
      if (fresh && fresh.version !== latest.version) resigned += 1;
    }
    if (resigned > 0) this.log.info({ resigned }, 're-signed manifests before expiry');
    return resigned;
  }
}

/** The version of the key set a stored manifest envelope carries (0 when unreadable: re-sign). */
function signedKeySetVersion(body: string): number {
  try {
    const version = (JSON.parse(body) as { keySet?: { signed?: { version?: unknown } } }).keySet?.signed
      ?.version;
    return typeof version === 'number' ? version : 0;
  } catch {
    return 0;
  }
}
