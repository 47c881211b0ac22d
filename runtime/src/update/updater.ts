import {
  chooseRelease,
  codeOf,
  EdgeshipError,
  type ErrorCode,
  HttpStatusError,
  type KeySet,
  MAX_MANIFEST_BYTES,
  type Manifest,
  NetworkError,
  type Release,
  type ReleaseRef,
  releaseId,
  type SegmentValues,
  StalledDownloadError,
  UnsupportedRuntimeError,
} from '@edgeship/protocol';
import semverGte from 'semver/functions/gte';
import { type DownloadResult, downloadRelease } from '../download/fetcher.ts';
import type { ModelStore } from '../store/model-store.ts';
import type { RuntimeEvent } from '../worker/config.ts';
import { readCappedText } from './read-capped.ts';
import { fetchReleaseDocument } from './release-document.ts';
import type { TrustStore } from './trust-store.ts';

export interface UpdaterConfig {
  server: string;
  app: string;
  channel: string;
  deviceId: string;
  runtimeVersion: string;
  fetch?: typeof fetch;
  /** Deadline for the manifest request, headers and body (slow retrieval). */
  timeoutMs?: number;
  /**
   * Deadline for a whole check, downloads included. Past it the check is abandoned with
   * E_STALLED, so a drip-fed download cannot hold the single-flight check (and the halts that
   * later manifests carry) forever; verified chunks are kept and the next check resumes.
   */
  checkDeadlineMs?: number;
  downloadConcurrency?: number;
  stallMs?: number;
  /** Per-chunk minimum rate and first-byte allowance (see DownloadOptions). */
  minBytesPerSecond?: number;
  firstByteMs?: number;
  /** Models the app declared up front (RuntimeConfig.models); see Updater.want. */
  models?: readonly string[];
  /**
   * What this device knows of its own segment for a model (protocol deviceSegmentValues): a
   * rollout that excludes its segment gives it production, whatever its bucket.
   */
  segment?: (model: string) => Partial<SegmentValues>;
  /** Called as the download of a release a load() waits for begins (its engine can start meanwhile). */
  onAwaitedDownload?: (release: Release) => void;
}

type UpdaterEvent<T extends RuntimeEvent['type']> = Extract<RuntimeEvent, { type: T }>;

/** The page's events the updater emits, with what the worker's telemetry also reads. */
export type UpdateEvent =
  | UpdaterEvent<'update-available' | 'shadow-ready'>
  | (UpdaterEvent<'update-downloaded'> & { download: DownloadResult })
  /** `version`: the release's version (telemetry counts the failure under it). */
  | (UpdaterEvent<'update-failed'> & { version: string });

export interface CheckResult {
  /** False when the server answered 304: nothing changed since the last check. */
  changed: boolean;
  manifestVersion: number | null;
  /** Per model: what this device should run now and what it shadows. */
  targets: Record<string, { active: string | null; shadow: string | null; inRollout: boolean }>;
  downloaded: string[];
  failures: Array<{ release: string; code: ErrorCode; message: string }>;
}

export const DEFAULT_MANIFEST_TIMEOUT_MS = 30_000;
export const DEFAULT_CHECK_DEADLINE_MS = 10 * 60_000;

/**
 * One update check, top to bottom: fetch the manifest (honouring its ETag), verify it through
 * the trust store, pick this device's releases by rollout bucket, download what is missing, and
 * stage it as pending. Never touches what is active: activation belongs to the runtime.
 */
export class Updater {
  private readonly wanted: Set<string>;
  /** Models a load() waits for (RuntimeCore.load): their download keeps its bytes for it. */
  private readonly awaited = new Set<string>();
  private readonly fetchImpl: typeof fetch;

  constructor(
    private readonly store: ModelStore,
    private readonly trust: TrustStore,
    private readonly config: UpdaterConfig,
    private readonly emit: (event: UpdateEvent) => void = () => {},
  ) {
    this.fetchImpl = config.fetch ?? fetch.bind(globalThis);
    this.wanted = new Set(config.models);
  }

  /**
   * One check, settled by its deadline at the latest: the deadline aborts every request of the
   * check, and the race settles the check even if something ignores the abort.
   */
  async check(now = new Date()): Promise<CheckResult> {
    const budgetMs = this.config.checkDeadlineMs ?? DEFAULT_CHECK_DEADLINE_MS;
    const abandon = new AbortController();
    const timer = setTimeout(
      () =>
        abandon.abort(
          new StalledDownloadError(`the update check did not finish within ${budgetMs} ms and was abandoned`),
        ),
      budgetMs,
    );
    const abandoned = new Promise<never>((_, reject) => {
      abandon.signal.addEventListener('abort', () => reject(abandon.signal.reason), { once: true });
    });
    try {
      return await Promise.race([this.runCheck(now, abandon.signal), abandoned]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async runCheck(now: Date, signal: AbortSignal): Promise<CheckResult> {
    const fetched = await this.fetchManifest(signal);
    const bytes = fetched?.text ?? (await this.store.getMeta('manifest'));
    const result: CheckResult = {
      changed: fetched !== null,
      manifestVersion: null,
      targets: {},
      downloaded: [],
      failures: [],
    };
    if (!bytes) return result;
    signal.throwIfAborted();
    // Verified every time, cached bytes included: a manifest that has expired since is refused.
    const { manifest, keySet } = await this.trust.acceptManifest(bytes, now);
    if (fetched !== null) {
      // Remembered only once verified, so a refused manifest is fetched in full next time.
      await this.store.setMeta('manifest', fetched.text);
      if (fetched.etag) await this.store.setMeta('manifest-etag', fetched.etag);
    }
    result.manifestVersion = manifest.version;
    await this.applyManifest(manifest, keySet, result, signal);
    return result;
  }

  /**
   * A model the app uses: declared, loaded in this session, or installed before. A manifest
   * names every model of the channel; the others are never downloaded (a page that runs VAD
   * must not fetch a 2 GB model another page of the app offers).
   */
  want(model: string): void {
    this.wanted.add(model);
  }

  /**
   * A load of `model` waits for this check to install it (nothing stored yet): the release it
   * downloads for it is left in memory, verified, for that load to open (ModelStore.handOver),
   * instead of being read back out of the store it was just written to.
   */
  awaitInstall(model: string, waiting: boolean): void {
    if (waiting) this.awaited.add(model);
    else this.awaited.delete(model);
  }

  private async uses(model: string): Promise<boolean> {
    if (this.wanted.has(model)) return true;
    const pointers = await this.store.pointers(model);
    return Boolean(pointers.active || pointers.pending || pointers.lastKnownGood);
  }

  private async applyManifest(
    manifest: Manifest,
    keySet: KeySet,
    result: CheckResult,
    signal: AbortSignal,
  ): Promise<void> {
    const failed = new Set((await this.store.getMeta('failed-releases')) ?? []);
    for (const entry of manifest.models) {
      if (!(await this.uses(entry.name))) continue;
      // An abandoned check stops here rather than staging behind the next check's back.
      signal.throwIfAborted();
      const choice = await chooseRelease(entry, this.config.deviceId, this.config.segment?.(entry.name));
      const idOf = (ref: ReleaseRef | null) => ref && releaseId({ model: entry.name, version: ref.version });
      const active = idOf(choice.active);
      const shadow = idOf(choice.shadow);
      result.targets[entry.name] = { active, shadow, inRollout: choice.inRollout };
      if (choice.active && active && !failed.has(active)) {
        const keep = this.awaited.has(entry.name);
        const got = await this.ensureDownloaded(entry.name, choice.active, keySet, result, signal, keep);
        signal.throwIfAborted();
        if (got) {
          // Staged first: "downloaded" promises the next load runs it, even if the page reloads now.
          await this.stage(entry.name, got.id);
          if (got.download)
            this.emit({
              type: 'update-downloaded',
              model: entry.name,
              release: got.id,
              download: got.download,
            });
        }
      }
      if (choice.shadow && shadow && !failed.has(shadow)) {
        const got = await this.ensureDownloaded(entry.name, choice.shadow, keySet, result, signal);
        if (got?.download)
          this.emit({
            type: 'update-downloaded',
            model: entry.name,
            release: got.id,
            download: got.download,
          });
        if (got) this.emit({ type: 'shadow-ready', model: entry.name, release: got.id });
      }
    }
  }

  /** Makes `id` the pending release unless it is already what runs. */
  private async stage(model: string, id: string): Promise<void> {
    const pointers = await this.store.pointers(model);
    if (pointers.active === id) {
      if (pointers.pending) await this.store.setPending(model, null);
      return;
    }
    if (pointers.pending !== id) await this.store.setPending(model, id);
  }

  /**
   * Downloads a release unless it is installed: its signed document first (by the hash the
   * manifest gives, fetched only now), then the chunks that document lists. `download`: what this
   * call fetched (null when it was installed already); null itself when the download failed.
   */
  private async ensureDownloaded(
    model: string,
    ref: ReleaseRef,
    keySet: KeySet,
    result: CheckResult,
    signal: AbortSignal,
    keepBytes = false,
  ) {
    const id = releaseId({ model, version: ref.version });
    if ((await this.store.getRelease(id))?.complete) return { id, download: null };
    try {
      const signed = await fetchReleaseDocument(
        {
          server: this.config.server,
          fetch: this.fetchImpl,
          timeoutMs: this.config.timeoutMs ?? DEFAULT_MANIFEST_TIMEOUT_MS,
          signal,
        },
        model,
        ref,
        keySet,
      );
      if (!semverGte(this.config.runtimeVersion, signed.signed.minRuntimeVersion)) {
        throw new UnsupportedRuntimeError(
          `${id} needs runtime ${signed.signed.minRuntimeVersion}; this is ${this.config.runtimeVersion}`,
        );
      }
      this.emit({ type: 'update-available', model, release: id });
      if (keepBytes) this.config.onAwaitedDownload?.(signed.signed);
      const download = await downloadRelease(this.store, signed, {
        server: this.config.server,
        fetch: this.fetchImpl,
        concurrency: this.config.downloadConcurrency,
        stallMs: this.config.stallMs,
        minBytesPerSecond: this.config.minBytesPerSecond,
        firstByteMs: this.config.firstByteMs,
        signal,
        keepBytes,
      });
      result.downloaded.push(id);
      return { id, download };
    } catch (error) {
      // The whole check was abandoned: that is the check's failure, not this release's.
      if (signal.aborted) throw signal.reason;
      const code = codeOf(error);
      const message = (error as Error).message;
      result.failures.push({ release: id, code, message });
      this.emit({ type: 'update-failed', model, release: id, version: ref.version, code, message });
      return null;
    }
  }

  /** The manifest's bytes and ETag, or null on 304 Not Modified. */
  private async fetchManifest(
    checkSignal: AbortSignal,
  ): Promise<{ text: string; etag: string | null } | null> {
    const url = `${this.config.server.replace(/\/$/, '')}/v1/apps/${this.config.app}/channels/${this.config.channel}/manifest`;
    const etag = await this.store.getMeta('manifest-etag');
    const deadlineMs = this.config.timeoutMs ?? DEFAULT_MANIFEST_TIMEOUT_MS;
    const tooSlow = new AbortController();
    const timer = setTimeout(
      () => tooSlow.abort(new StalledDownloadError(`the manifest did not arrive within ${deadlineMs} ms`)),
      deadlineMs,
    );
    const signal = AbortSignal.any([checkSignal, tooSlow.signal]);
    try {
      let response: Response;
      try {
        response = await this.fetchImpl(url, {
          headers: etag ? { 'if-none-match': etag } : {},
          // The HTTP cache must not answer for us: freshness is decided by the server and the ETag.
          cache: 'no-store',
          signal,
        });
      } catch (error) {
        if (signal.aborted && signal.reason instanceof EdgeshipError) throw signal.reason;
        throw new NetworkError(`cannot reach the update server: ${(error as Error).message}`, {
          cause: error,
        });
      }
      if (response.status === 304) return null;
      if (!response.ok)
        throw new HttpStatusError(`manifest request answered ${response.status}`, response.status);
      return {
        text: await readCappedText(response, MAX_MANIFEST_BYTES, signal),
        etag: response.headers.get('etag'),
      };
    } finally {
      clearTimeout(timer);
    }
  }
}
