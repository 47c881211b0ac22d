// Attribution: the same raw ORT session behind comlink (the RPC layer the runtime uses), so the
// runtime's overhead splits into what comlink costs and what the runtime itself adds.
import { expose, transfer } from 'comlink';
import * as ort from 'onnxruntime-web';

let session: ort.InferenceSession | undefined;

const api = {
  async load(wasmPaths: string, bytes: Uint8Array) {
    ort.env.wasm.wasmPaths = wasmPaths;
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = 'error';
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    });
  },
  async run(input: Float32Array, state: Float32Array) {
    const out = await session!.run({
      input: new ort.Tensor('float32', input, [1, 512]),
      state: new ort.Tensor('float32', state, [2, 1, 128]),
      sr: new ort.Tensor('int64', BigInt64Array.of(16_000n), []),
    });
    const output = out.output!.data as Float32Array;
    const stateN = out.stateN!.data as Float32Array;
    return transfer({ output, stateN }, [output.buffer, stateN.buffer]);
  },
};

export type OrtComlinkApi = typeof api;
expose(api);
