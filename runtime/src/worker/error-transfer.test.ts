// Both worker channels over a real MessageChannel (structured clone, as between page and worker):
// comlink's calls and the inference channel give back the same typed errors, fields and stacks.
import { MalformedError } from '@edgeship/protocol/errors';
import { expose, wrap } from 'comlink';
import { afterEach, describe, expect, it } from 'vitest';
import { NoBackendError } from '../engines/engine.ts';
import { ActivationError } from './activation-error.ts';
import { installErrorTransfer } from './error-transfer.ts';
import { InferenceClient, serveInference } from './inference-channel.ts';

const reasons = [
  { config: { backend: 'webgpu' as const }, code: 'no-webgpu' as const, reason: 'navigator.gpu is missing' },
  {
    config: { backend: 'wasm' as const, threads: 1 },
    code: 'wasm-missing' as const,
    reason: 'ort.wasm: 404',
  },
];
const noBackend = () => new NoBackendError('onnx', reasons);

const ports: MessagePort[] = [];
afterEach(() => {
  for (const port of ports.splice(0)) port.close();
});

function channel() {
  const { port1, port2 } = new MessageChannel();
  ports.push(port1, port2);
  return { port1, port2 };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe.each([
  [
    'comlink',
    (thrown: () => Error) => {
      installErrorTransfer();
      const { port1, port2 } = channel();
      expose({ fail: () => Promise.reject(thrown()) }, port1);
      return () => wrap<{ fail(): Promise<void> }>(port2).fail();
    },
  ],
  [
    'the inference channel',
    (thrown: () => Error) => {
      const { port1, port2 } = channel();
      serveInference(port1, () => ({
        run: () => Promise.reject(thrown()),
        runSequence: () => Promise.reject(thrown()),
      }));
      const client = new InferenceClient(port2);
      return () => client.run('vad', {});
    },
  ],
])('errors crossing %s', (_, connect) => {
  it("keep a NoBackendError's class, code, reasons and stack", async () => {
    const original = noBackend();
    const error = await rejection(connect(() => original)());
    expect(error).toBeInstanceOf(NoBackendError);
    expect(error).toMatchObject({ code: 'E_NO_BACKEND', message: original.message, reasons });
    expect(error.stack).toBe(original.stack);
  });

  it("keep an ActivationError's phase and code", async () => {
    const error = await rejection(
      connect(() => new ActivationError('engine', 'vad@1.0.0 failed to load', { cause: noBackend() }))(),
    );
    expect(error).toBeInstanceOf(ActivationError);
    expect(error).toMatchObject({ code: 'E_HEALTH_CHECK', phase: 'engine' });
  });

  it("keep protocol's classes, and a plain error plain", async () => {
    expect(await rejection(connect(() => new MalformedError('not JSON'))())).toBeInstanceOf(MalformedError);
    const plain = await rejection(connect(() => new RangeError('out of range'))());
    expect(plain).toMatchObject({ name: 'RangeError', message: 'out of range' });
    expect(plain).not.toHaveProperty('code');
  });
});
