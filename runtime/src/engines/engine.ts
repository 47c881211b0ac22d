import type { NamedTensors } from './tensor.ts';

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

/** Why a config was not used, e.g. "no WebGPU adapter" or the ORT error text. */
export interface FallbackReason {
  config: EngineConfig;
  reason: string;
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
