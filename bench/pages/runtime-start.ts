import { type CreateRuntimeOptions, createRuntime } from '../../runtime/src/client.ts';
import type { NamedTensors } from '../../runtime/src/engines/tensor.ts';

/**
 * One start of a runtime, timed by span: createRuntime (worker, trust store), load (download or
 * IndexedDB, verify, session), the first run. The model's status is read after the timed spans,
 * then the runtime is disposed.
 */
export async function timedRuntimeStart(options: CreateRuntimeOptions, model: string, inputs: NamedTensors) {
  const t0 = performance.now();
  const rt = await createRuntime(options);
  const t1 = performance.now();
  const handle = await rt.load(model);
  const t2 = performance.now();
  const outputs = await rt.run(model, inputs);
  const t3 = performance.now();
  const status = await handle.status();
  await rt.dispose();
  return { totalMs: t3 - t0, createMs: t1 - t0, loadMs: t2 - t1, firstRunMs: t3 - t2, outputs, status };
}
