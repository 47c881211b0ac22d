// The baseline: raw onnxruntime-web in a dedicated worker, with the smallest message protocol
// that runs Silero (no verification, no store, no telemetry).
import * as ort from 'onnxruntime-web';

export type OrtWorkerRequest =
  | { type: 'load'; wasmPaths: string; bytes?: Uint8Array; url?: string }
  | { type: 'run'; input: Float32Array; state: Float32Array };

export type OrtWorkerReply =
  | { type: 'loaded' }
  | { type: 'result'; output: Float32Array; stateN: Float32Array }
  | { type: 'error'; message: string };

let session: ort.InferenceSession | undefined;
const sampleRate = () => new ort.Tensor('int64', BigInt64Array.of(16_000n), []);

self.onmessage = async (event: MessageEvent<OrtWorkerRequest>) => {
  const message = event.data;
  try {
    if (message.type === 'load') {
      ort.env.wasm.wasmPaths = message.wasmPaths;
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.proxy = false;
      ort.env.logLevel = 'error';
      const bytes =
        message.bytes ??
        new Uint8Array(await (await fetch(message.url!, { cache: 'no-store' })).arrayBuffer());
      session = await ort.InferenceSession.create(bytes, {
        executionProviders: ['wasm'],
        graphOptimizationLevel: 'all',
      });
      self.postMessage({ type: 'loaded' } satisfies OrtWorkerReply);
      return;
    }
    const out = await session!.run({
      input: new ort.Tensor('float32', message.input, [1, 512]),
      state: new ort.Tensor('float32', message.state, [2, 1, 128]),
      sr: sampleRate(),
    });
    const output = out.output!.data as Float32Array;
    const stateN = out.stateN!.data as Float32Array;
    self.postMessage({ type: 'result', output, stateN } satisfies OrtWorkerReply, [
      output.buffer,
      stateN.buffer,
    ]);
  } catch (error) {
    self.postMessage({
      type: 'error',
      message: String((error as Error).message ?? error),
    } satisfies OrtWorkerReply);
  }
};
