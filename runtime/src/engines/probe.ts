import type { Release } from '@edgeship/protocol';
import { BackendUnavailableError, type EngineConfig, type FallbackCode } from './engine.ts';
import type { Trial } from './select.ts';
import type { NamedTensors } from './tensor.ts';

/*
 * Why a worker per trial: onnxruntime-web reads env.wasm.numThreads once, when its WASM first
 * initialises, so "1 thread vs N threads" cannot be compared inside one worker, and timing
 * WebGPU here would pin this worker's thread count before the race is decided. Each trial
 * therefore runs in a throwaway nested module worker with its own ORT instance; it loads, warms
 * up and times the model there (so messaging is not timed), reports the median and is
 * terminated. Only then does the real worker initialise ORT, with the winner's thread count.
 * The cost: one extra model copy and one ORT start-up per candidate, on a release's first load only.
 */

export interface ProbeRequest {
  model: Uint8Array;
  quantization: Release['quantization'];
  config: EngineConfig;
  wasmPaths: string;
  sample: NamedTensors;
  warmupRuns: number;
}
export type ProbeReply = { ok: true; medianMs: number } | { ok: false; code: FallbackCode; reason: string };

export interface OnnxProbeOptions {
  model: Uint8Array;
  /** The release's quantization: the trial opens the model as the real session will. */
  quantization?: Release['quantization'];
  wasmPaths: string;
  /** Per trial, including the worker's start-up and model load (default 60 s). */
  timeoutMs?: number;
}

/** A Trial (for selectEngine) that times an ONNX config in a fresh nested worker. */
export function createOnnxProbe(opts: OnnxProbeOptions): Trial {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return (config, sample, warmupRuns) =>
    new Promise<number>((resolve, reject) => {
      const worker = new Worker(new URL('./probe-worker.ts', import.meta.url), { type: 'module' });
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
        quantization: opts.quantization ?? { method: 'none' },
        config,
        wasmPaths: opts.wasmPaths,
        sample,
        warmupRuns,
      };
      worker.postMessage(request, [request.model.buffer]);
    });
}
