import type { NamedTensors } from '../engines/tensor.ts';

/** The arrays alone, by name: what telemetry's drift features read. */
export function plainTensors(tensors: NamedTensors) {
  return Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, t.data]));
}

/** Deep copies: the originals are transferred to the caller and detached. */
export function copyTensors(tensors: NamedTensors): NamedTensors {
  return Object.fromEntries(
    Object.entries(tensors).map(([name, t]) => [
      name,
      { data: t.data.slice() as typeof t.data, dims: [...t.dims] },
    ]),
  );
}
