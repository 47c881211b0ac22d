import type { TrustedRoot } from '@edgeship/protocol';
import type { Backend, EngineConfig, FallbackReason } from '../engines/engine.ts';
import type { OrtWasmPaths } from '../engines/ort-assets.ts';

export interface RuntimeConfig {
  /** The update server's origin, e.g. "https://models.example.com". */
  server: string;
  app: string;
  channel: string;
  /** The pinned root keys (root.pub.json from `edgeship keygen`), built into the app. */
  trustedRoot: TrustedRoot;
  /**
   * Where onnxruntime-web's WASM build is: a same-origin folder URL ending in "/", or the URLs of
   * its two files. Default: the copies shipped beside the runtime's worker (dist/worker/ort/),
   * which Vite and webpack emit on their own; see the README for other setups.
   */
  wasmPaths?: string | OrtWasmPaths;
  /** Same-origin URL of @tensorflow/tfjs-backend-wasm's .wasm files; without it tfjs skips WASM. */
  tfjsWasmPaths?: string;
  /** Force a backend instead of measuring; "auto" (default) times the candidates once per release. */
  backend?: Backend | 'auto';
  /** "next-load" (default): a downloaded release runs from the next load on; "immediate": at once. */
  activation?: 'next-load' | 'immediate';
  /**
   * When the release running here is withdrawn (its canary halted, or production rolled back:
   * the device's bucket now gets an older release): "immediate" (default) switches at once,
   * between two calls, never under one; "next-load" waits for the next load like any update.
   */
  withdrawnActivation?: 'immediate' | 'next-load';
  /**
   * After an activation that replaced a release, the new one's first `inferences` calls (default
   * 50) are watched: when its share of failed calls or non-finite outputs exceeds the replaced
   * release's (as seen in this worker; 0 if unseen) by more than `maxIncrease` (default 0.05),
   * the device goes back to the replaced release and refuses the new one (a `rolled-back` event,
   * E_HEALTH_CHECK in telemetry). False: no guard.
   */
  activationGuard?: { inferences?: number; maxIncrease?: number } | false;
  /** Send drift and latency telemetry (default true). No raw input ever leaves the device. */
  telemetry?: boolean;
  /** Share of inferences also run on a shadow candidate, when the device is in a shadow rollout. */
  shadowSampleRate?: number;
  /** Check for updates in the background when a cached release is loaded (default true). */
  checkOnLoad?: boolean;
  /**
   * The page checks for updates every this many ms (default 5 min; 0: only on load and on
   * demand), each wait jittered by ±20%, doubled per failed check in a row, paused while the page
   * is hidden and resumed on `visibilitychange` and `online` (see check-schedule.ts).
   */
  checkIntervalMs?: number;
  /** Telemetry is sealed and sent every this many ms. */
  telemetryIntervalMs?: number;
  /** IndexedDB database names (tests and multi-tenant pages isolate with a prefix). */
  storagePrefix?: string;
  /**
   * Backoff for a release that failed to activate for a cause in the environment (WASM not
   * fetched, no backend, quota, network): retried after initialMs (default 60 s), doubling per
   * failure in a row up to maxMs (default 6 h), and at once when the runtime or these options change.
   */
  activationRetry?: { initialMs?: number; maxMs?: number };
  /**
   * Models to keep installed and updated before the app loads them (e.g. to download while
   * online). A model is also kept once loaded; the manifest's other models are never downloaded.
   */
  models?: string[];
  /**
   * Bounds on retrieval (slow-retrieval protection): the whole update check (default 10 min),
   * the manifest request (30 s), a chunk's first byte (15 s) and its minimum rate (4 KiB/s).
   * Past one, the download is abandoned with E_STALLED; verified chunks are kept.
   */
  retrieval?: {
    checkDeadlineMs?: number;
    manifestTimeoutMs?: number;
    firstByteMs?: number;
    minBytesPerSecond?: number;
  };
}

export interface BackendReport {
  chosen: EngineConfig;
  trials: Array<{ config: EngineConfig; medianMs?: number; error?: string }>;
  fallbacks: FallbackReason[];
  /** True when the choice came from an earlier measurement on this device. */
  remembered: boolean;
}

export interface ModelStatus {
  name: string;
  active: string | null;
  pending: string | null;
  lastKnownGood: string | null;
  /** The release whose engine is loaded in the worker now. */
  loaded: string | null;
  backend: BackendReport | null;
  shadow: string | null;
  cached: string[];
  /** Releases of this model that failed to activate here, why, and when they are tried again. */
  refused: RefusedRelease[];
}

/** A release that failed to activate on this device (see worker/failure-policy.ts). */
export interface RefusedRelease {
  release: string;
  code: string;
  message: string;
  /** "environment": retried with backoff; "model": refused until a newer manifest offers it or reset(model). */
  cause: 'environment' | 'model';
  /** The step that failed: reading the stored files, starting an engine, the health check, or the guard after activation. */
  phase: 'read' | 'engine' | 'health-check' | 'guard';
  failedAt: string;
  /** Failures in a row under this runtime version and options. */
  attempts: number;
  /** False once the backoff is over (or the options changed): the next load or check tries it. */
  refused: boolean;
  /** When it is tried again; null for a model failure (not retried by itself). */
  retryAt: string | null;
}

export interface LastCheck {
  at: string;
  ok: boolean;
  changed?: boolean;
  manifestVersion?: number | null;
  error?: { code: string; message: string };
}

export interface RuntimeStatus {
  deviceId: string;
  /** The browser's answer to navigator.storage.persist(): null until it answers, or when not asked. */
  storagePersisted: boolean | null;
  runtimeVersion: string;
  lastCheck: LastCheck | null;
  models: ModelStatus[];
  latency: Record<string, { count: number; p50: number | null; p95: number | null }>;
}

export type EngineStartStep = 'read' | 'probe' | 'engine';

export type RuntimeEvent =
  | { type: 'update-available'; model: string; release: string }
  | { type: 'update-downloaded'; model: string; release: string }
  | { type: 'update-failed'; model: string; release: string; code: string; message: string }
  | { type: 'update-activated'; model: string; release: string; previous: string | null }
  | { type: 'rolled-back'; model: string; from: string; to: string | null; code: string; reason: string }
  /** The release running here was halted or rolled back on the server; `to` is what the bucket gets now. */
  | { type: 'release-withdrawn'; model: string; release: string; to: string }
  | { type: 'check-failed'; code: string; message: string }
  | { type: 'shadow-ready'; model: string; release: string }
  /** The browser answered navigator.storage.persist() (fired on the page, not by the worker). */
  | { type: 'storage-persisted'; persisted: boolean | null }
  /**
   * A stored release is being opened on its engine (`bytes`: its files), at `step`: 'read' (its
   * bytes from the store), 'probe' (an autotune trial, in a nested worker that bounds itself) or
   * 'engine' (its engine created, then health-checked). The page bounds each step.
   */
  | { type: 'engine-starting'; model: string; release: string; bytes: number; step: EngineStartStep }
  /** That start is over (`ok` false: it failed, and the failure is reported as before). */
  | { type: 'engine-started'; model: string; release: string; ok: boolean }
  /**
   * An engine start passed its bound (engineStartLimitMs): the page terminated that worker and
   * started a fresh one, where the calls that waited are tried once more (fired on the page).
   */
  | { type: 'worker-restarted'; model: string; release: string; timeoutMs: number };

/** What the worker reports; the page adds what only it knows. */
export type WorkerStatus = Omit<RuntimeStatus, 'storagePersisted'>;

/** The backend the app forces with `backend`, or undefined when the runtime measures ("auto"). */
export function forcedBackend(config: Pick<RuntimeConfig, 'backend'>): Backend | undefined {
  return config.backend && config.backend !== 'auto' ? config.backend : undefined;
}
