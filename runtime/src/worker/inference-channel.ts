import { DisposedError, type ErrorData } from '@edgeship/protocol/errors';
import type { NamedTensors, TensorData } from '../engines/tensor.ts';
import { buffersOf } from './buffers.ts';
import { errorFromData, errorToData } from './error-transfer.ts';
import type { SequenceRequest, SequenceResult } from './sequence.ts';

/**
 * `run` travels on the worker's own message channel (`worker.postMessage`, the worker's
 * `self.onmessage`), comlink on a MessageChannel of its own: inference is the hot path (a VAD
 * calls it 31 times a second), and comlink's per-call proxy bookkeeping measured as much time as
 * the postMessage itself. Tensors are transferred both ways.
 *
 * A run is one flat array each way, `[id, model, name, data, dims, name, data, dims, …]` and
 * `[id, predictionId, name, data, dims, …]`: structured clone pays per object and per property
 * name, and in Chromium a round trip of Silero's three tensors as nested objects cost ~14 µs more
 * than flat (and a MessagePort ~10 µs more than the worker's channel; bench/README.md). Inputs an
 * app got wrong (a tensor that is not an object with an array) travel as the object they are, so
 * the worker's checks answer them as before. Errors and sequences are objects (`{ id, … }`).
 */
type RunReply = unknown[];
type ObjectRequest =
  | { id: number; model: string; inputs: NamedTensors }
  | { id: number; model: string; sequence: SequenceRequest };
type ObjectReply = { id: number; result: SequenceResult } | { id: number; error: ErrorData };

/** What both ends talk through: a Worker on the page, the worker's global scope, or a MessagePort. */
export interface InferenceEndpoint {
  postMessage(message: unknown, transfer: Transferable[]): void;
  onmessage: ((event: MessageEvent) => unknown) | null;
}

/** What the worker end calls: one inference, or a whole sequence. */
export interface InferenceHandlers {
  run(model: string, inputs: NamedTensors): Promise<{ outputs: NamedTensors; predictionId: string }>;
  runSequence(model: string, request: SequenceRequest): Promise<SequenceResult>;
}

interface Waiter {
  resolve: (value: never) => void;
  reject: (e: Error) => void;
}

/** Main-thread end: one pending promise per request id. */
export class InferenceClient {
  private nextId = 1;
  private readonly pending = new Map<number, Waiter>();

  constructor(private readonly endpoint: InferenceEndpoint) {
    endpoint.onmessage = (event: MessageEvent<RunReply | ObjectReply>) => {
      const reply = event.data;
      const id = Array.isArray(reply) ? (reply[0] as number) : reply.id;
      const waiter = this.pending.get(id);
      if (!waiter) return;
      this.pending.delete(id);
      if (Array.isArray(reply)) {
        // The outputs, with the run's `predictionId` on them (not enumerable: the tensors stay the only keys).
        const outputs = Object.defineProperty(decodeTensors(reply, 2), 'predictionId', {
          value: reply[1] as string,
          enumerable: false,
        });
        waiter.resolve(outputs as never);
      } else if ('error' in reply) waiter.reject(errorFromData(reply.error));
      else waiter.resolve(reply.result as never);
    };
  }

  /** The outputs, with the run's `predictionId` on them. */
  run(model: string, inputs: NamedTensors): Promise<NamedTensors & { readonly predictionId: string }> {
    const id = this.nextId++;
    const transfer: ArrayBuffer[] = [];
    const flat = encodeTensors([id, model], inputs, transfer);
    if (flat) return this.send(id, flat, transfer);
    return this.send(id, { id, model, inputs } satisfies ObjectRequest, buffersOf(inputs));
  }

  runSequence(model: string, sequence: SequenceRequest): Promise<SequenceResult> {
    const id = this.nextId++;
    const buffers = [...new Set([...buffersOf(sequence.steps), ...buffersOf(sequence.inputs)])];
    return this.send(id, { id, model, sequence } satisfies ObjectRequest, buffers);
  }

  private send<T>(id: number, message: unknown, transfer: ArrayBuffer[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: never) => void, reject });
      this.endpoint.postMessage(message, transfer);
    });
  }

  /** Rejects every call still waiting with `error` (the worker is lost or going away). */
  fail(error: Error): void {
    const waiters = [...this.pending.values()];
    this.pending.clear();
    for (const waiter of waiters) waiter.reject(error);
  }

  /** Fails what is still waiting (the worker is going away) and stops listening. */
  close(): void {
    this.fail(new DisposedError('the runtime was disposed'));
    this.endpoint.onmessage = null;
    if (typeof MessagePort !== 'undefined' && this.endpoint instanceof MessagePort) this.endpoint.close();
  }
}

/** Worker end: answers each request with the outputs, or the error with its stable code. */
export function serveInference(endpoint: InferenceEndpoint, handlers: () => InferenceHandlers) {
  const fail = (id: number, error: unknown) =>
    endpoint.postMessage({ id, error: errorToData(error) } satisfies ObjectReply, []);
  endpoint.onmessage = (event: MessageEvent<unknown[] | ObjectRequest>) => {
    const request = event.data;
    const flat = Array.isArray(request);
    const id = flat ? (request[0] as number) : request.id;
    try {
      if (!flat && 'sequence' in request) {
        handlers()
          .runSequence(request.model, request.sequence)
          .then((result) => {
            const buffers = [...new Set([...buffersOf(result.outputs), ...buffersOf(result.state)])];
            endpoint.postMessage({ id, result } satisfies ObjectReply, buffers);
          })
          .catch((error: unknown) => fail(id, error));
        return;
      }
      const model = flat ? (request[1] as string) : request.model;
      const inputs = flat ? decodeTensors(request, 2) : request.inputs;
      handlers()
        .run(model, inputs)
        .then(({ outputs, predictionId }) => {
          const transfer: ArrayBuffer[] = [];
          endpoint.postMessage(encodeTensors([id, predictionId], outputs, transfer) as RunReply, transfer);
        })
        .catch((error: unknown) => fail(id, error));
    } catch (error) {
      fail(id, error);
    }
  };
}

/**
 * `head` followed by name, data, dims of each tensor, their buffers added to `transfer`; null
 * when one is not a tensor (the caller sends the object as it is).
 */
function encodeTensors(head: unknown[], tensors: NamedTensors, transfer: ArrayBuffer[]): unknown[] | null {
  if (typeof tensors !== 'object' || tensors === null) return null;
  for (const name in tensors) {
    if (!Object.hasOwn(tensors, name)) continue;
    const tensor: TensorData | undefined = tensors[name];
    if (typeof tensor !== 'object' || tensor === null || !ArrayBuffer.isView(tensor.data)) return null;
    const { buffer } = tensor.data;
    if (buffer instanceof ArrayBuffer && !transfer.includes(buffer)) transfer.push(buffer);
    head.push(name, tensor.data, tensor.dims);
  }
  return head;
}

function decodeTensors(flat: unknown[], from: number): NamedTensors {
  const tensors: NamedTensors = {};
  for (let i = from; i < flat.length; i += 3) {
    const tensor = { data: flat[i + 1] as TensorData['data'], dims: flat[i + 2] as number[] };
    const name = flat[i] as string;
    // An own "__proto__", as structured clone would have made it (a plain assignment sets the prototype).
    if (name === '__proto__')
      Object.defineProperty(tensors, name, {
        value: tensor,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    else tensors[name] = tensor;
  }
  return tensors;
}
