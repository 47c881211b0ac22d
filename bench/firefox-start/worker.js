// One trial: import onnxruntime-web, start its WASM backend, create a session, run once.
// Posts each phase it reaches so a hang says where it stopped.
const t0 = performance.now();
const post = (phase, extra = {}) => postMessage({ phase, ms: Math.round(performance.now() - t0), ...extra });
const RealWorker = self.Worker;
if (RealWorker) {
  self.Worker = class extends RealWorker {
    constructor(url, opts) {
      super(url, opts);
      post('pthread-worker-constructed');
    }
  };
}
self.onmessage = async (event) => {
  if (event.data === 'ping') {
    const entries = performance
      .getEntriesByType('resource')
      .map((e) => `${e.name.split('/').pop()}:${Math.round(e.responseEnd)}`);
    postMessage({ phase: 'pong', resources: entries });
    return;
  }
  const { ortFile, paths, threads, binary, ep, preimport, importOnly, trial } = event.data;
  try {
    if (importOnly) {
      // Only the dynamic import ORT makes of its WASM factory, under a fresh URL each trial (no
      // module-map or cache hit): whether Firefox's worker import alone stalls.
      await import(`/ort/${importOnly}?trial=${trial}`);
      post('ran');
      return;
    }
    const ort = await import(`/ort/${ortFile}`);
    post('ort-imported');
    const mjsName = ortFile.includes('wasm.')
      ? 'ort-wasm-simd-threaded.mjs'
      : 'ort-wasm-simd-threaded.jsep.mjs';
    const wasmName = mjsName.replace('.mjs', '.wasm');
    const base = new URL('/ort/', location.href).href;
    if (paths === 'override') ort.env.wasm.wasmPaths = { mjs: base + mjsName, wasm: base + wasmName };
    else if (paths === 'prefix') ort.env.wasm.wasmPaths = base;
    if (preimport) {
      // The same module ORT imports itself (a module map hit for ORT then): says whether a stall
      // is in this dynamic import or after it.
      await import(base + mjsName);
      post('factory-imported');
    }
    if (binary) {
      ort.env.wasm.wasmBinary = await (await fetch(base + wasmName)).arrayBuffer();
      post('wasm-fetched');
    }
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.proxy = false;
    const model = new Uint8Array(await (await fetch('/model.onnx')).arrayBuffer());
    const session = await ort.InferenceSession.create(model, { executionProviders: [ep ?? 'wasm'] });
    post('session-created');
    const feeds = {
      input: new ort.Tensor('float32', new Float32Array(512), [1, 512]),
      state: new ort.Tensor('float32', new Float32Array(256), [2, 1, 128]),
      sr: new ort.Tensor('int64', BigInt64Array.from([16000n]), []),
    };
    const out = await session.run(feeds);
    post('ran', { prob: out.output.data[0] });
  } catch (error) {
    post('error', { error: String(error) });
  }
};
