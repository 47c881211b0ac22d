import { type CreateRuntimeOptions, createRuntime } from '../../runtime/src/client.ts';
import type { NamedTensors } from '../../runtime/src/engines/tensor.ts';

/**
 * One start of a runtime, timed by span: createRuntime (worker, trust store), load (download or
 * IndexedDB, verify, session), the first run. The load is split by the runtime's own
 * engine-starting events (as the page receives them): `readMs` from the read step to the engine
 * step (the store's read and chunk checks), `engineMs` from there to load() resolving (engine,
 * health check, pointers). The model's status is read after the timed spans, then the runtime is
 * disposed.
 */
export async function timedRuntimeStart(options: CreateRuntimeOptions, model: string, inputs: NamedTensors) {
  const t0 = performance.now();
  const rt = await createRuntime(options);
  const t1 = performance.now();
  const steps: Partial<Record<'read' | 'engine', number>> = {};
  const off = rt.on('engine-starting', (event) => {
    if (event.model !== model) return;
    const step = event.step === 'probe' ? 'engine' : event.step;
    steps[step] ??= performance.now();
  });
  const handle = await rt.load(model);
  const t2 = performance.now();
  off();
  const outputs = await rt.run(model, inputs);
  const t3 = performance.now();
  const status = await handle.status();
  await rt.dispose();
  const read = steps.read;
  const engine = steps.engine;
  return {
    totalMs: t3 - t0,
    createMs: t1 - t0,
    loadMs: t2 - t1,
    readMs: read !== undefined && engine !== undefined ? engine - read : null,
    engineMs: engine !== undefined ? t2 - engine : null,
    firstRunMs: t3 - t2,
    outputs,
    status,
  };
}
