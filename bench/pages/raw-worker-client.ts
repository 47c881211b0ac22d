import type { OrtWorkerReply, OrtWorkerRequest } from './ort-worker.ts';

/** One request at a time to the raw ORT worker (the benchmark runs frames sequentially). */
export class RawOrtWorker {
  private readonly worker = new Worker(new URL('./ort-worker.ts', import.meta.url), { type: 'module' });
  private pending: ((reply: OrtWorkerReply) => void) | null = null;

  constructor() {
    this.worker.onmessage = (event: MessageEvent<OrtWorkerReply>) => {
      const resolve = this.pending;
      this.pending = null;
      resolve?.(event.data);
    };
  }

  request(message: OrtWorkerRequest, transfer: Transferable[] = []): Promise<OrtWorkerReply> {
    return new Promise((resolve, reject) => {
      this.pending = (reply) => (reply.type === 'error' ? reject(new Error(reply.message)) : resolve(reply));
      this.worker.postMessage(message, transfer);
    });
  }

  async run(input: Float32Array, state: Float32Array) {
    const reply = await this.request({ type: 'run', input, state }, [input.buffer, state.buffer]);
    if (reply.type !== 'result') throw new Error(`unexpected reply ${reply.type}`);
    return reply;
  }

  terminate() {
    this.worker.terminate();
  }
}
