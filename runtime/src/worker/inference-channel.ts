import { DisposedError, type ErrorData } from '@edgeship/protocol/errors';
import type { NamedTensors } from '../engines/tensor.ts';
import { buffersOf } from './buffers.ts';
import { errorFromData, errorToData } from './error-transfer.ts';
import type { SequenceRequest, SequenceResult } from './sequence.ts';

/**
 * `run` travels over its own MessageChannel instead of comlink: inference is the hot path (a VAD
 * calls it 31 times a second), and comlink's per-call proxy bookkeeping measured as much time as
 * the postMessage itself. Requests and replies carry an id; tensors are transferred both ways. A
 * sequence request carries many steps of a stateful model in one message each way.
 */
type RunRequest =
  | { id: number; model: string; inputs: NamedTensors }
  | { id: number; model: string; sequence: SequenceRequest };

type RunReply =
  | { id: number; outputs: NamedTensors }
  | { id: number; result: SequenceResult }
  | { id: number; error: ErrorData };

/** What the worker end calls: one inference, or a whole sequence. */
export interface InferenceHandlers {
  run(model: string, inputs: NamedTensors): Promise<NamedTensors>;
  runSequence(model: string, request: SequenceRequest): Promise<SequenceResult>;
}

/** Main-thread end: one pending promise per request id. */
export class InferenceClient {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (reply: RunReply) => void; reject: (e: Error) => void }
  >();

  constructor(private readonly port: MessagePort) {
    port.onmessage = (event: MessageEvent<RunReply>) => {
      const reply = event.data;
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if ('error' in reply) waiter.reject(errorFromData(reply.error));
      else waiter.resolve(reply);
    };
  }

  async run(model: string, inputs: NamedTensors): Promise<NamedTensors> {
    const id = this.nextId++;
    const reply = await this.send({ id, model, inputs }, buffersOf(inputs));
    return (reply as { outputs: NamedTensors }).outputs;
  }

  async runSequence(model: string, sequence: SequenceRequest): Promise<SequenceResult> {
    const id = this.nextId++;
    const buffers = [...new Set([...buffersOf(sequence.steps), ...buffersOf(sequence.inputs)])];
    const reply = await this.send({ id, model, sequence }, buffers);
    return (reply as { result: SequenceResult }).result;
  }

  private send(request: RunRequest, transfer: ArrayBuffer[]): Promise<RunReply> {
    return new Promise((resolve, reject) => {
      this.pending.set(request.id, { resolve, reject });
      this.port.postMessage(request, transfer);
    });
  }

  /** Fails what is still waiting (the worker is going away) and closes the port. */
  close(): void {
    for (const waiter of this.pending.values()) {
      waiter.reject(new DisposedError('the runtime was disposed'));
    }
    this.pending.clear();
    this.port.close();
  }
}

/** Worker end: answers each request with the outputs, or the error with its stable code. */
export function serveInference(port: MessagePort, handlers: () => InferenceHandlers) {
  port.onmessage = async (event: MessageEvent<RunRequest>) => {
    const request = event.data;
    const { id, model } = request;
    try {
      if ('sequence' in request) {
        const result = await handlers().runSequence(model, request.sequence);
        const buffers = [...new Set([...buffersOf(result.outputs), ...buffersOf(result.state)])];
        port.postMessage({ id, result } satisfies RunReply, buffers);
      } else {
        const outputs = await handlers().run(model, request.inputs);
        port.postMessage({ id, outputs } satisfies RunReply, buffersOf(outputs));
      }
    } catch (error) {
      port.postMessage({ id, error: errorToData(error) } satisfies RunReply);
    }
  };
}
