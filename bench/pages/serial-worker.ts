/** The reply a bench worker sends when a request failed: it rejects that request. */
export interface ErrorReply {
  type: 'error';
  message: string;
}

/**
 * One request at a time to a bench worker (the benchmarks run their steps one after another, so
 * the next reply always answers the request in flight).
 */
export class SerialWorker<Request, Reply extends { type: string }> {
  private pending: ((reply: Reply | ErrorReply) => void) | null = null;

  /** `worker` is built by the caller: Vite bundles a worker from `new Worker(new URL(...))` in place. */
  constructor(private readonly worker: Worker) {
    this.worker.onmessage = (event: MessageEvent<Reply | ErrorReply>) => {
      const resolve = this.pending;
      this.pending = null;
      resolve?.(event.data);
    };
  }

  request(message: Request, transfer: Transferable[] = []): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.pending = (reply) =>
        reply.type === 'error' ? reject(new Error((reply as ErrorReply).message)) : resolve(reply as Reply);
      this.worker.postMessage(message, transfer);
    });
  }

  terminate() {
    this.worker.terminate();
  }
}
