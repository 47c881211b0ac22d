import type { NamedTensors } from '../engines/tensor.ts';

/** The buffers of a tensor set, so they move between threads instead of being copied. */
export function buffersOf(tensors: NamedTensors): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const tensor of Object.values(tensors)) {
    if (tensor.data.buffer instanceof ArrayBuffer) buffers.add(tensor.data.buffer);
  }
  return [...buffers];
}
