import { EdgeshipError, errorFromData } from '@edgeship/protocol/errors';
import type { NamedTensors } from '../engines/tensor.ts';
import { buffersOf } from './buffers.ts';

/**
 * `run` travels over its own MessageChannel instead of comlink: inference is the hot path (a VAD
 * calls it 31 times a second), and comlink's per-call proxy bookkeeping measured as much time as
 * the postMessage itself. Requests and replies carry an id; tensors are transferred both ways.
 */
interface RunRequest {
  id: number;
  model: string;
  inputs: NamedTensors;
}

type RunReply =
  | { id: number; outputs: NamedTensors }
  | { id: number; error: { code?: string; name: string; message: string } };

/** Main-thread end: one pending promise per request id. */
export class InferenceClient {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (o: NamedTensors) => void; reject: (e: Error) => void }
  >();

  constructor(private readonly port: MessagePort) {
    port.onmessage = (event: MessageEvent<RunReply>) => {
      const reply = event.data;
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if ('outputs' in reply) waiter.resolve(reply.outputs);
      else waiter.reject(toError(reply.error));
    };
  }

  run(model: string, inputs: NamedTensors): Promise<NamedTensors> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.port.postMessage({ id, model, inputs } satisfies RunRequest, buffersOf(inputs));
    });
  }

  /** Fails what is still waiting (the worker is going away) and closes the port. */
  close(): void {
    for (const waiter of this.pending.values()) {
      waiter.reject(new EdgeshipError('E_DISPOSED', 'the runtime was disposed'));
    }
    this.pending.clear();
    this.port.close();
  }
}

/** Worker end: answers each request with the outputs, or the error with its stable code. */
export function serveInference(
  port: MessagePort,
  run: (model: string, inputs: NamedTensors) => Promise<NamedTensors>,
) {
  port.onmessage = async (event: MessageEvent<RunRequest>) => {
    const { id, model, inputs } = event.data;
    try {
      const outputs = await run(model, inputs);
      port.postMessage({ id, outputs } satisfies RunReply, buffersOf(outputs));
    } catch (error) {
      const e = error as Error;
      port.postMessage({
        id,
        error: {
          code: error instanceof EdgeshipError ? error.code : undefined,
          name: e.name,
          message: e.message,
        },
      } satisfies RunReply);
    }
  };
}

function toError(data: { code?: string; name: string; message: string }): Error {
  if (data.code) return errorFromData({ code: data.code, message: data.message, name: data.name });
  return Object.assign(new Error(data.message), { name: data.name });
}
