import { EdgeshipError } from '@edgeship/protocol/errors';
import { proxy, type Remote, releaseProxy, transfer, wrap } from 'comlink';
import type { NamedTensors } from './engines/tensor.ts';
import { requestPersistence } from './store/storage-pressure.ts';
import type { CheckResult } from './update/updater.ts';
import type { RuntimeWorkerApi } from './worker/api.ts';
import type { ModelStatus, RuntimeConfig, RuntimeEvent, RuntimeStatus } from './worker/config.ts';
import { installErrorTransfer } from './worker/error-transfer.ts';
import { InferenceClient } from './worker/inference-channel.ts';

export interface CreateRuntimeOptions extends RuntimeConfig {
  /** Override where the worker script comes from (bundlers resolve the default). */
  worker?: Worker;
  /**
   * Ask the browser to keep this origin's storage under pressure (default true), so the cached
   * models survive eviction. Workers cannot ask; the page does it here.
   */
  persistStorage?: boolean;
}

type EventType = RuntimeEvent['type'];
type Listener<T extends EventType> = (event: Extract<RuntimeEvent, { type: T }>) => void;

/** The main-thread handle: every call crosses to the worker, so inference never blocks the page. */
export interface Runtime {
  readonly deviceId: string;
  /** What the browser answered to navigator.storage.persist(): null when not asked or unsupported. */
  readonly storagePersisted: boolean | null;
  load(model: string): Promise<ModelStatus>;
  /** Inputs are transferred to the worker (the caller's arrays are detached); outputs come back transferred. */
  run(model: string, inputs: NamedTensors): Promise<NamedTensors>;
  checkForUpdates(): Promise<CheckResult>;
  status(): Promise<RuntimeStatus>;
  sendTelemetry(): Promise<{ sent: number; discarded: number }>;
  on<T extends EventType>(type: T | '*', listener: Listener<T>): () => void;
  dispose(): Promise<void>;
}

export async function createRuntime(options: CreateRuntimeOptions): Promise<Runtime> {
  installErrorTransfer();
  const { worker: given, persistStorage = true, ...config } = options;
  const storagePersisted = persistStorage ? await requestPersistence() : null;
  const worker =
    given ??
    new Worker(new URL('./worker/worker.ts', import.meta.url), { type: 'module', name: 'edgeship-runtime' });
  const remote: Remote<RuntimeWorkerApi> = wrap<RuntimeWorkerApi>(worker);
  const listeners = new Set<{ type: string; listener: (event: RuntimeEvent) => void }>();
  const dispatch = (event: RuntimeEvent) => {
    for (const entry of listeners) if (entry.type === '*' || entry.type === event.type) entry.listener(event);
  };
  let disposed = false;
  const live = () => {
    if (disposed) throw new EdgeshipError('E_DISPOSED', 'the runtime was disposed');
  };
  const channel = new MessageChannel();
  const inference = new InferenceClient(channel.port1);
  const { deviceId } = await remote.init(config, proxy(dispatch), transfer(channel.port2, [channel.port2]));

  return {
    deviceId,
    storagePersisted,
    async load(model) {
      live();
      return remote.load(model);
    },
    async run(model, inputs) {
      live();
      return inference.run(model, inputs);
    },
    async checkForUpdates() {
      live();
      return remote.checkForUpdates();
    },
    async status() {
      live();
      return remote.status();
    },
    async sendTelemetry() {
      live();
      return remote.sendTelemetry();
    },
    on(type, listener) {
      const entry = { type, listener: listener as (event: RuntimeEvent) => void };
      listeners.add(entry);
      return () => listeners.delete(entry);
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await remote.dispose().catch(() => {});
      inference.close();
      remote[releaseProxy]();
      worker.terminate();
      listeners.clear();
    },
  };
}
