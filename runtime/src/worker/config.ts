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
  /** "next-load" (default): a downloaded release runs from the next load on. */
  activation?: 'next-load' | 'immediate';
  /** Send drift and latency telemetry (default true). No raw input ever leaves the device. */
  telemetry?: boolean;
  /** Share of inferences also run on a shadow candidate, when the device is in a shadow rollout. */
  shadowSampleRate?: number;
  /** Check for updates in the background when a cached release is loaded (default true). */
  checkOnLoad?: boolean;
  /** Background update checks every this many ms (0: only on load and on demand). */
  checkIntervalMs?: number;
  /** Telemetry is sealed and sent every this many ms. */
  telemetryIntervalMs?: number;
  /** IndexedDB database names (tests and multi-tenant pages isolate with a prefix). */
  storagePrefix?: string;
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
  runtimeVersion: string;
  lastCheck: LastCheck | null;
  models: ModelStatus[];
  latency: Record<string, { count: number; p50: number | null; p95: number | null }>;
}

export type RuntimeEvent =
  | { type: 'update-available'; model: string; release: string }
  | { type: 'update-downloaded'; model: string; release: string }
  | { type: 'update-failed'; model: string; release: string; code: string; message: string }
  | { type: 'update-activated'; model: string; release: string; previous: string | null }
  | { type: 'rolled-back'; model: string; from: string; to: string | null; code: string; reason: string }
  | { type: 'check-failed'; code: string; message: string }
  | { type: 'shadow-ready'; model: string; release: string };
