import type { Release } from '@edgeship/protocol';
import { BackendUnavailableError, type EngineConfig, type FallbackCode } from './engine.ts';
import type { OnnxExternalData } from './onnx-engine.ts';
import type { OrtWasmPaths } from './ort-assets.ts';
import type { Trial } from './select.ts';
import type { NamedTensors } from './tensor.ts';

/** The worker name under which the runtime's worker script answers one probe instead of the API. */
export const PROBE_WORKER_NAME = 'edgeship-probe';

/*
 * Why a worker per trial: onnxruntime-web reads env.wasm.numThreads once, when its WASM first
 * initialises, so "1 thread vs N threads" cannot be compared inside one worker, and timing
 * WebGPU here would pin this worker's thread count before the race is decided. Each trial
 * therefore runs in a throwaway nested module worker with its own ORT instance; it loads, warms
 * up and times the model there (so messaging is not timed), reports the median and is
 * terminated. The nested worker is the runtime's own worker script started under another name
 * (worker.ts serves the probe then), so an app ships one ORT, not a second copy for probing. Only then does the real worker initialise ORT, with the winner's thread count.
 * The cost: one extra model copy and one ORT start-up per candidate, on a release's first load only.
 */

export interface ProbeRequest {
  model: Uint8Array;
  externalData: OnnxExternalData[];
  quantization: Release['quantization'];
  config: EngineConfig;
  wasmPaths: OrtWasmPaths | string | undefined;
  sample: NamedTensors;
  warmupRuns: number;
}
export type ProbeReply = { ok: true; medianMs: number } | { ok: false; code: FallbackCode; reason: string };

export interface OnnxProbeOptions {
  model: Uint8Array;
  /** The model's external-data files, if its weights live outside the .onnx file. */
  externalData?: readonly OnnxExternalData[];
  /** The release's quantization: the trial opens the model as the real session will. */
  quantization?: Release['quantization'];
  wasmPaths?: OrtWasmPaths | string;
  /** The runtime's worker script; default: the script of the worker this runs in. */
  workerUrl?: string | URL;
  /** Per trial, including the worker's start-up and model load (default 60 s). */
  timeoutMs?: number;
}

/** A Trial (for selectEngine) that times an ONNX config in a fresh nested worker. */
export function createOnnxProbe(opts: OnnxProbeOptions): Trial {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const workerUrl = opts.workerUrl ?? globalThis.location.href;
  return (config, sample, warmupRuns) =>
    new Promise<number>((resolve, reject) => {
      const worker = new Worker(workerUrl, { type: 'module', name: PROBE_WORKER_NAME });
      const timer = setTimeout(
        () =>
          finish(new BackendUnavailableError('session-failed', `probe gave no answer in ${timeoutMs} ms`)),
        timeoutMs,
      );
      function finish(outcome: number | Error): void {
        // A worker that never answers or fails to start is a failed session, like ORT's own errors.
        clearTimeout(timer);
        worker.terminate();
        if (typeof outcome === 'number') resolve(outcome);
        else reject(outcome);
      }
      worker.onmessage = (event: MessageEvent<ProbeReply>) => {
        const reply = event.data;
        finish(reply.ok ? reply.medianMs : new BackendUnavailableError(reply.code, reply.reason));
      };
      worker.onerror = (event) => {
        event.preventDefault();
        finish(
          new BackendUnavailableError(
            'session-failed',
            `probe worker failed: ${event.message || 'script error'}`,
          ),
        );
      };
      const request: ProbeRequest = {
        model: opts.model.slice(),
        externalData: (opts.externalData ?? []).map((f) => ({ path: f.path, data: f.data.slice() })),
        quantization: opts.quantization ?? { method: 'none' },
        config,
        wasmPaths: opts.wasmPaths,
        sample,
        warmupRuns,
      };
      worker.postMessage(request, [
        request.model.buffer,
        ...request.externalData.map((f) => f.data.buffer as ArrayBuffer),
      ]);
    });
}
