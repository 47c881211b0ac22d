import { codeOf, deviceSegmentOf, deviceSegmentValues, type NavigatorLike } from '@edgeship/protocol';
import semverLt from 'semver/functions/lt';
import type { ModelStore } from '../store/model-store.ts';
import type { TrustStore } from '../update/trust-store.ts';
import { type CheckResult, type UpdateEvent, Updater } from '../update/updater.ts';
import { RUNTIME_VERSION } from '../version.ts';
import type { LastCheck, RuntimeConfig, RuntimeEvent } from './config.ts';
import type { ReleaseDeps } from './model-loader.ts';
import { startEngineEarly } from './open-engine.ts';
import type { ShadowLifecycle } from './shadow-lifecycle.ts';

/**
 * Update checks, one at a time: telemetry goes out first, the updater stages what the manifest
 * gives this device, and what was staged is activated when the options say so.
 */
export class UpdateChecks {
  private checking: Promise<CheckResult> | null = null;
  private last: LastCheck | null = null;

  constructor(
    private readonly deps: ReleaseDeps,
    private readonly shadows: ShadowLifecycle,
    private readonly sendTelemetry: () => Promise<unknown>,
    private readonly emit: (event: RuntimeEvent) => void,
  ) {}

  get lastCheck(): LastCheck | null {
    return this.last;
  }

  /** Checks the server now; a check already under way is joined, not repeated. */
  check(): Promise<CheckResult> {
    this.checking ??= this.run().finally(() => {
      this.checking = null;
    });
    return this.checking;
  }

  private async run(): Promise<CheckResult> {
    await this.sendTelemetry().catch(() => {});
    let result: CheckResult;
    try {
      // Environment failures whose backoff is over become stageable again.
      await this.deps.book.syncRefused();
      result = await this.deps.updater.check();
      const offered = new Set(
        Object.values(result.targets).flatMap((t) => [t.active, t.shadow].filter((id) => id !== null)),
      );
      // A newer manifest offering a release refused for a model cause lifts the refusal; the
      // manifest is applied again (a 304 on the ETag) so the release is staged in this check.
      if ((await this.deps.book.liftOffered(result.manifestVersion, offered)).length > 0) {
        const again = await this.deps.updater.check();
        result = { ...again, changed: result.changed || again.changed };
      }
      this.last = {
        at: new Date().toISOString(),
        ok: true,
        changed: result.changed,
        manifestVersion: result.manifestVersion,
      };
    } catch (error) {
      const code = codeOf(error);
      this.last = {
        at: new Date().toISOString(),
        ok: false,
        error: { code, message: (error as Error).message },
      };
      this.emit({ type: 'check-failed', code, message: (error as Error).message });
      throw error;
    }
    for (const [name, target] of Object.entries(result.targets)) {
      const { pending } = await this.deps.store.pointers(name);
      if (pending && (await this.activatesNow(name, pending)))
        await this.deps.activation.switchTo(name, pending);
      await this.shadows.prepare(name, target.shadow);
    }
    return result;
  }

  /**
   * Whether the staged release replaces the running one at once: always with immediate
   * activation, and by default when the running release was withdrawn. The manifest does not say
   * "halted"; it gives the bucket an older release than the one running, which is what a halted
   * canary and a production rollback look like from here (a new release is never older).
   */
  private async activatesNow(name: string, pending: string): Promise<boolean> {
    const running = this.deps.activation.loaded(name);
    if (!running) return false;
    if (this.deps.config.activation === 'immediate') return true;
    if ((this.deps.config.withdrawnActivation ?? 'immediate') !== 'immediate') return false;
    const staged = await this.deps.store.getRelease(pending);
    if (!staged || !semverLt(staged.version, running.release.version)) return false;
    this.emit({ type: 'release-withdrawn', model: name, release: running.id, to: pending });
    return true;
  }
}

/** The updater for the runtime's options: this device, this runtime, the app's retrieval bounds. */
export function updaterFor(
  config: RuntimeConfig,
  store: ModelStore,
  trust: TrustStore,
  deviceId: string,
  emit: (event: RuntimeEvent) => void,
  pipeline?: (event: UpdateEvent) => void,
  /** The backend a model runs on now, once known (a rollout may exclude a backend). */
  backendOf?: (model: string) => string | undefined,
): Updater {
  const segment = deviceSegmentOf(globalThis.navigator as NavigatorLike | undefined);
  return new Updater(
    store,
    trust,
    {
      server: config.server,
      app: config.app,
      channel: config.channel,
      deviceId,
      runtimeVersion: RUNTIME_VERSION,
      checkDeadlineMs: config.retrieval?.checkDeadlineMs,
      timeoutMs: config.retrieval?.manifestTimeoutMs,
      firstByteMs: config.retrieval?.firstByteMs,
      minBytesPerSecond: config.retrieval?.minBytesPerSecond,
      models: config.models,
      segment: (model) => deviceSegmentValues(segment, RUNTIME_VERSION, backendOf?.(model)),
      onAwaitedDownload: (release) => void startEngineEarly(store, release, config),
    },
    (event) => {
      pipeline?.(event);
      emit(event);
    },
  );
}
