// Raw tfjs in a dedicated worker, with a two-message protocol (load, run).
import { loadRawTfjs, type TfjsModelFiles } from './tfjs-raw.ts';

export type TfjsWorkerRequest =
  | { type: 'load'; files: TfjsModelFiles; backend: string }
  | { type: 'run'; audio: Float32Array };

let run: ((audio: Float32Array) => Promise<Float32Array>) | undefined;

self.onmessage = async (event: MessageEvent<TfjsWorkerRequest>) => {
  const message = event.data;
  try {
    if (message.type === 'load') {
      run = await loadRawTfjs(message.files, message.backend);
      self.postMessage({ type: 'loaded' });
      return;
    }
    const probabilities = await run!(message.audio);
    self.postMessage({ type: 'result', probabilities }, [probabilities.buffer]);
  } catch (error) {
    self.postMessage({ type: 'error', message: String((error as Error).message ?? error) });
  }
};
