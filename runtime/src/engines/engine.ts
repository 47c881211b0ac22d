// The zod-free subpath: these classes are revived on the page (worker/error-transfer.ts).
import { BACKEND_FALLBACK_CODES, coded } from '@edgeship/protocol/errors';
import type { NamedTensors } from './tensor.ts';

export type ModelFormat = 'onnx' | 'tfjs';

/** Where inference runs. ORT offers webgpu and wasm; tfjs offers webgl and cpu (see candidateConfigs). */
export type Backend = 'webgpu' | 'wasm' | 'webgl' | 'cpu';
export const BACKENDS: readonly Backend[] = ['webgpu', 'wasm', 'webgl', 'cpu'];

export interface EngineConfig {
  backend: Backend;
  /** WASM threads; 1 = single-threaded. Unset means "whatever the runtime was configured with". */
  threads?: number;
}

/** A loaded model on one backend. Run calls are serialised by the caller (one inference at a time). */
export interface Engine {
  readonly config: EngineConfig;
  /** The model's own input and output names, in the model's order. */
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Outputs come back as plain typed arrays the caller owns (transferable); engine tensors are freed. */
  run(inputs: NamedTensors): Promise<NamedTensors>;
  dispose(): Promise<void>;
}

/**
 * Why a config was not used, as a stable code apps can branch on:
 * - no-webgpu: navigator.gpu is missing or gives no adapter
 * - not-isolated: WASM threads need a cross-origin isolated page (SharedArrayBuffer)
 * - single-core: one core, so no WASM threads
 * - not-bundled: the tfjs build has no such backend
 * - not-available: the app asked for a backend that is not a candidate here
 * - unsupported-op: the model uses an operator the backend cannot run
 * - session-failed: the backend failed to create a session or load the model
 * - threads-fixed: ORT already started with another thread count in this worker
 * - non-finite: the backend ran but gave NaN or Infinity on the sample input
 * - remembered-failed: the config measured fastest earlier no longer loads
 * - wasm-missing: the runtime's WASM files are not where `wasmPaths` says (the reason names the URL)
 */
export const FALLBACK_CODES = BACKEND_FALLBACK_CODES;
export type FallbackCode = (typeof FALLBACK_CODES)[number];

/** Why a config was not used: the code, and the text behind it (e.g. ORT's own error message). */
export interface FallbackReason {
  config: EngineConfig;
  code: FallbackCode;
  reason: string;
}

/** A backend cannot run this model; `fallback` says why, for the FallbackReason. */
export class BackendUnavailableError extends coded('E_NO_BACKEND') {
  constructor(
    readonly fallback: FallbackCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Every candidate failed; `reasons` lists each one's (they reach the page with the error). */
export class NoBackendError extends coded('E_NO_BACKEND') {
  constructor(
    format: ModelFormat,
    readonly reasons: FallbackReason[],
  ) {
    const list = reasons.map((r) => `${describeConfig(r.config)}: ${r.reason}`).join('; ');
    super(`no backend could run this ${format} model (${list || 'no candidates'})`);
  }
}

/** The fallback code for an error from loading or running a config. */
/**
 * `config` could not start because of `error`: the fallback code `fallbackCodeOf` reads from it
 * unless the caller knows better, and the config and the error's own words in the message.
 */
export function startFailure(
  config: EngineConfig,
  error: unknown,
  code: FallbackCode = fallbackCodeOf(error),
): BackendUnavailableError {
  return new BackendUnavailableError(code, `${describeConfig(config)}: ${errorText(error)}`, {
    cause: error,
  });
}

export function fallbackCodeOf(error: unknown): FallbackCode {
  if (error instanceof BackendUnavailableError) return error.fallback;
  return UNSUPPORTED_OP.test(errorText(error)) ? 'unsupported-op' : 'session-failed';
}

// ORT's words for an operator no kernel implements (NOT_IMPLEMENTED), on any EP.
const UNSUPPORTED_OP = /could not find an implementation|not implemented|unsupported op|is not supported/i;

/**
 * A WebGPU config where the browser has no WebGPU at all (Firefox ESR, headless or not): ORT says
 * "WebGPU is not supported", which reads as an unsupported operator, and tfjs registers no webgpu
 * backend, which reads as a build without it. Both are no-webgpu.
 */
export function assertWebGpuExists(config: EngineConfig): void {
  if (config.backend === 'webgpu' && !(globalThis.navigator && 'gpu' in navigator)) {
    throw new BackendUnavailableError(
      'no-webgpu',
      `${describeConfig(config)}: no WebGPU: navigator.gpu is missing`,
    );
  }
}

/** "wasm×2", "webgpu": how a config reads in reasons and logs. */
export function describeConfig(config: EngineConfig): string {
  return config.threads === undefined ? config.backend : `${config.backend}×${config.threads}`;
}

export function sameConfig(a: EngineConfig, b: EngineConfig): boolean {
  return a.backend === b.backend && a.threads === b.threads;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
