import { SerialWorker } from './serial-worker.ts';
import type { TfjsModelFiles } from './tfjs-raw.ts';
import type { TfjsWorkerRequest } from './tfjs-worker.ts';

type Reply = { type: 'loaded' } | { type: 'result'; probabilities: Float32Array };

/** The raw tfjs worker: the tone classifier in bare tfjs. */
export class RawTfjsWorker extends SerialWorker<TfjsWorkerRequest, Reply> {
  constructor() {
    super(new Worker(new URL('./tfjs-worker.ts', import.meta.url), { type: 'module' }));
  }

  async load(files: TfjsModelFiles, backend: string) {
    await this.request({ type: 'load', files, backend });
  }

  async run(audio: Float32Array): Promise<Float32Array> {
    const reply = await this.request({ type: 'run', audio }, [audio.buffer]);
    if (reply.type !== 'result') throw new Error(`unexpected reply ${reply.type}`);
    return reply.probabilities;
  }
}
