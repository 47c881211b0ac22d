// The baseline for real-sized models: raw onnxruntime-web in a dedicated worker, the model's files
// either handed over from memory or fetched here as plain chunk requests (no verification, no
// store), then a session and one run of bigOnnxModel's MatMuls.
import * as ort from 'onnxruntime-web';

export interface BigRawFile {
  path: string;
  size: number;
  /** Given: the session is created from these bytes. */
  bytes?: Uint8Array;
  /** Otherwise fetched, four at a time, into one buffer of `size`. */
  chunks?: Array<{ url: string; size: number }>;
}

export type BigRawRequest = { wasmPaths: string; files: BigRawFile[]; input: Float32Array; width: number };
export type BigRawReply =
  | { type: 'done'; fetchMs: number; sessionMs: number; firstRunMs: number; output: number }
  | { type: 'error'; message: string };

/** Four chunk requests in flight, as the runtime's downloader; each copied to its offset on arrival. */
async function fetchFile(file: BigRawFile): Promise<Uint8Array> {
  const out = new Uint8Array(file.size);
  const chunks = file.chunks ?? [];
  const offsets: number[] = [];
  for (let i = 0, at = 0; i < chunks.length; at += chunks[i]!.size, i++) offsets.push(at);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < chunks.length; i = next++) {
      const body = await (await fetch(chunks[i]!.url, { cache: 'no-store' })).arrayBuffer();
      out.set(new Uint8Array(body), offsets[i]);
    }
  };
  await Promise.all(Array.from({ length: 4 }, lane));
  return out;
}

self.onmessage = async (event: MessageEvent<BigRawRequest>) => {
  const { wasmPaths, files, input, width } = event.data;
  try {
    ort.env.wasm.wasmPaths = wasmPaths;
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = 'error';
    const t0 = performance.now();
    const bytes = await Promise.all(files.map((f) => (f.bytes ? Promise.resolve(f.bytes) : fetchFile(f))));
    const t1 = performance.now();
    const [model, ...external] = bytes;
    const session = await ort.InferenceSession.create(model!, {
      graphOptimizationLevel: 'all',
      executionProviders: ['wasm'],
      ...(external.length
        ? { externalData: files.slice(1).map((f, i) => ({ path: f.path, data: external[i]! })) }
        : {}),
    });
    const t2 = performance.now();
    const out = await session.run({ input: new ort.Tensor('float32', input, [1, width]) });
    const t3 = performance.now();
    const output = (out.output!.data as Float32Array)[0]!;
    await session.release();
    self.postMessage({
      type: 'done',
      fetchMs: t1 - t0,
      sessionMs: t2 - t1,
      firstRunMs: t3 - t2,
      output,
    } satisfies BigRawReply);
  } catch (error) {
    self.postMessage({
      type: 'error',
      message: String((error as Error).message ?? error),
    } satisfies BigRawReply);
  }
};
