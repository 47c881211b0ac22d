// The inference channel over a real MessageChannel (structured clone and transfer, as between
// page and worker): what the worker's handlers receive and what the page gets back.
import { TimeoutError } from '@edgeship/protocol/errors';
import { afterEach, describe, expect, it } from 'vitest';
import type { NamedTensors } from '../engines/tensor.ts';
import { InferenceClient, type InferenceHandlers, serveInference } from './inference-channel.ts';

const ports: MessagePort[] = [];
afterEach(() => {
  for (const port of ports.splice(0)) port.close();
});

function connect(handlers: Partial<InferenceHandlers>) {
  const { port1, port2 } = new MessageChannel();
  ports.push(port1, port2);
  serveInference(port1, () => handlers as InferenceHandlers);
  return new InferenceClient(port2);
}

describe('the inference channel', () => {
  it('carries tensors both ways, transferred, with the prediction id beside the outputs', async () => {
    const seen: NamedTensors[] = [];
    const client = connect({
      run: async (model, inputs) => {
        seen.push(inputs);
        expect(model).toBe('vad');
        const stateN = new Float32Array(inputs.state!.data as Float32Array).map((v) => v + 1);
        return {
          outputs: {
            output: { data: Float32Array.of(0.25), dims: [1, 1] },
            stateN: { data: stateN, dims: [2] },
          },
          predictionId: 'p-1',
        };
      },
    });
    const input = Float32Array.of(0.5, -0.5);
    const state = Float32Array.of(1, 2);
    const outputs = await client.run('vad', {
      input: { data: input, dims: [1, 2] },
      state: { data: state, dims: [2] },
      sr: { data: BigInt64Array.of(16_000n), dims: [] },
    });
    expect(input.byteLength).toBe(0); // transferred, not copied
    expect(Object.keys(seen[0]!)).toEqual(['input', 'state', 'sr']);
    expect(seen[0]!.input).toEqual({ data: Float32Array.of(0.5, -0.5), dims: [1, 2] });
    expect(seen[0]!.sr).toEqual({ data: BigInt64Array.of(16_000n), dims: [] });
    expect(Object.keys(outputs)).toEqual(['output', 'stateN']);
    expect(outputs.stateN).toEqual({ data: Float32Array.of(2, 3), dims: [2] });
    expect(outputs.predictionId).toBe('p-1');
  });

  it('sends inputs that are not tensors as they are, for the worker to refuse', async () => {
    const seen: unknown[] = [];
    const client = connect({
      run: async (_, inputs) => {
        seen.push(inputs);
        return { outputs: {}, predictionId: 'p-2' };
      },
    });
    const odd = { input: { data: [0.5, 0.5], dims: [1, 2] }, state: null } as unknown as NamedTensors;
    await client.run('vad', odd);
    expect(seen[0]).toEqual({ input: { data: [0.5, 0.5], dims: [1, 2] }, state: null });
    // A tensor named like an object's prototype stays an own input name.
    await client.run('vad', JSON.parse('{"__proto__": {"data": 1}}'));
    expect(Object.keys(seen[1] as object)).toEqual(['__proto__']);
    const proto = JSON.parse('{"__proto__": {"dims": [0]}}');
    Object.getOwnPropertyDescriptor(proto, '__proto__')!.value.data = new Float32Array(0);
    await client.run('vad', proto); // the flat form, decoded on the worker's side
    expect(Object.getPrototypeOf(seen[2])).toBe(Object.prototype);
    expect(Object.keys(seen[2] as object)).toEqual(['__proto__']);
  });

  it('fails waiting runs with the error it is given, and later replies find no one', async () => {
    let finish!: () => void;
    const client = connect({
      run: () =>
        new Promise((resolve) => {
          finish = () => resolve({ outputs: {}, predictionId: 'late' });
        }),
    });
    const pending = client.run('vad', {});
    await new Promise((resolve) => setTimeout(resolve, 10));
    client.fail(new TimeoutError('the worker was lost'));
    await expect(pending).rejects.toBeInstanceOf(TimeoutError);
    finish();
    await new Promise((resolve) => setTimeout(resolve, 10));
  });
});
