/// <reference lib="webworker" />
// The probe side of probe.ts: the runtime's own worker script, started under PROBE_WORKER_NAME,
// times one ONNX config with its own ORT instance and answers once (see probe.ts for why).
import { errorText, fallbackCodeOf } from './engine.ts';
import { configureOrt, createOnnxEngine } from './onnx-engine.ts';
import type { ProbeReply, ProbeRequest } from './probe.ts';
import { timeEngine } from './select.ts';

export function serveProbe(scope: DedicatedWorkerGlobalScope): void {
  scope.onmessage = async (event: MessageEvent<ProbeRequest>) => {
    const { model, externalData, quantization, config, wasmPaths, sample, warmupRuns } = event.data;
    let reply: ProbeReply;
    try {
      configureOrt({ wasmPaths, threads: config.threads ?? 1 });
      const engine = await createOnnxEngine(model, config, quantization, externalData);
      try {
        reply = { ok: true, medianMs: await timeEngine(engine, sample, warmupRuns) };
      } finally {
        await engine.dispose();
      }
    } catch (error) {
      reply = { ok: false, code: fallbackCodeOf(error), reason: errorText(error) };
    }
    scope.postMessage(reply);
  };
}
