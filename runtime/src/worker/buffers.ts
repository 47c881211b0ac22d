import type { NamedTensors, TensorData } from '../engines/tensor.ts';

/** The buffers of a tensor set, so they move between threads instead of being copied. */
export function buffersOf(tensors: NamedTensors): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  // Whatever an app passed: a value that is not a tensor goes as it is, for the worker to refuse.
  for (const tensor of Object.values(tensors ?? {}) as Array<Partial<TensorData> | null>) {
    const buffer = tensor?.data?.buffer;
    if (buffer instanceof ArrayBuffer) buffers.add(buffer);
  }
  return [...buffers];
}
