import type { TfjsModelFiles } from './tfjs-raw.ts';
import type { TfjsWorkerRequest } from './tfjs-worker.ts';

type Reply =
  | { type: 'loaded' }
  | { type: 'result'; probabilities: Float32Array }
  | { type: 'error'; message: string };

export class RawTfjsWorker {
  private readonly worker = new Worker(new URL('./tfjs-worker.ts', import.meta.url), { type: 'module' });
  private pending: ((reply: Reply) => void) | null = null;

  constructor() {
    this.worker.onmessage = (event: MessageEvent<Reply>) => {
      const resolve = this.pending;
      this.pending = null;
      resolve?.(event.data);
    };
  }

  private request(message: TfjsWorkerRequest, transfer: Transferable[] = []): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.pending = (reply) => (reply.type === 'error' ? reject(new Error(reply.message)) : resolve(reply));
      this.worker.postMessage(message, transfer);
    });
  }

  async load(files: TfjsModelFiles, backend: string) {
    await this.request({ type: 'load', files, backend });
  }

  async run(audio: Float32Array): Promise<Float32Array> {
    const reply = await this.request({ type: 'run', audio }, [audio.buffer]);
    if (reply.type !== 'result') throw new Error(`unexpected reply ${reply.type}`);
    return reply.probabilities;
  }

  terminate() {
    this.worker.terminate();
  }
}
