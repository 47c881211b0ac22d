import type { OrtWorkerReply, OrtWorkerRequest } from './ort-worker.ts';
import { SerialWorker } from './serial-worker.ts';

/** The raw ORT worker: Silero frames through a bare onnxruntime-web session. */
export class RawOrtWorker extends SerialWorker<OrtWorkerRequest, OrtWorkerReply> {
  constructor() {
    super(new Worker(new URL('./ort-worker.ts', import.meta.url), { type: 'module' }));
  }

  async run(input: Float32Array, state: Float32Array) {
    const reply = await this.request({ type: 'run', input, state }, [input.buffer, state.buffer]);
    if (reply.type !== 'result') throw new Error(`unexpected reply ${reply.type}`);
    return reply;
  }
}
