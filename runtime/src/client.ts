import { DisposedError, TimeoutError } from '@edgeship/protocol/errors';
import { proxy, type Remote, releaseProxy, transfer, wrap } from 'comlink';
import { CheckSchedule, DEFAULT_CHECK_INTERVAL_MS } from './check-schedule.ts';
import type {
  Carried,
  CarryMap,
  InputsOf,
  ModelHandle,
  ModelName,
  ModelSchema,
  OutputsOf,
  RecurrentOf,
  SequenceCall,
  SequenceOutcome,
  Tensors,
} from './schema.ts';
import { requestPersistence } from './store/storage-pressure.ts';
import type { CheckResult } from './update/updater.ts';
import { withDeadline } from './with-deadline.ts';
import type { RuntimeWorkerApi } from './worker/api.ts';
import type { ModelStatus, RuntimeConfig, RuntimeEvent, RuntimeStatus } from './worker/config.ts';
import { installErrorTransfer } from './worker/error-transfer.ts';
import { InferenceClient } from './worker/inference-channel.ts';
import type { SequenceRequest } from './worker/sequence.ts';

export interface CreateRuntimeOptions extends RuntimeConfig {
  /** Override where the worker script comes from (bundlers resolve the default). */
  worker?: Worker;
  /**
   * Ask the browser to keep this origin's storage under pressure (default true), so the cached
   * models survive eviction. Workers cannot ask; the page does, in the background: Firefox answers
   * only once the user answers its permission prompt, so start-up never waits for it. False: ask
   * only when the app calls `runtime.persistStorage()` (e.g. after a user gesture).
   */
  persistStorage?: boolean;
  /** createRuntime rejects with E_TIMEOUT when the worker has not started in this many ms (default 60 s). */
  startTimeoutMs?: number;
}

// Generous: a first visit on a slow network downloads the worker bundle (TF.js included) inside it.
const DEFAULT_START_TIMEOUT_MS = 60_000;

type EventType = RuntimeEvent['type'];
type Listener<T extends EventType> = (event: Extract<RuntimeEvent, { type: T }>) => void;

/**
 * The main-thread handle: every call crosses to the worker, so inference never blocks the page.
 * `S` (optional, see ModelSchema) types model names, inputs and outputs.
 */
export interface Runtime<S extends ModelSchema | unknown = unknown> {
  readonly deviceId: string;
  /**
   * What the browser answered to navigator.storage.persist(): null until it answers, when not
   * asked, or where unsupported. Updated when the answer arrives (event "storage-persisted").
   */
  readonly storagePersisted: boolean | null;
  /** Asks navigator.storage.persist() now (one request at a time) and resolves with the answer. */
  persistStorage(): Promise<boolean | null>;
  /** Loads a model (cached release at once; the first time it downloads) and returns its handle. */
  load<M extends ModelName<S>>(
    model: M,
  ): Promise<ModelHandle<InputsOf<S, M>, OutputsOf<S, M>, RecurrentOf<S, M>>>;
  /** Inputs are transferred to the worker (the caller's arrays are detached); outputs come back transferred. */
  run<M extends ModelName<S>>(model: M, inputs: Tensors<InputsOf<S, M>>): Promise<Tensors<OutputsOf<S, M>>>;
  /** ModelHandle.runSequence, by model name. */
  runSequence<
    M extends ModelName<S>,
    const C extends CarryMap<InputsOf<S, M>, OutputsOf<S, M>> | undefined = Carried<
      InputsOf<S, M>,
      OutputsOf<S, M>,
      RecurrentOf<S, M>
    >,
  >(
    model: M,
    call: SequenceCall<InputsOf<S, M>, OutputsOf<S, M>, C>,
  ): Promise<SequenceOutcome<InputsOf<S, M>, OutputsOf<S, M>, C>>;
  /**
   * Forgets the model's releases that failed to activate here, environment and model causes
   * alike, so the next load or check tries them again.
   */
  reset(model: ModelName<S>): Promise<ModelStatus>;
  checkForUpdates(): Promise<CheckResult>;
  status(): Promise<RuntimeStatus>;
  sendTelemetry(): Promise<{ sent: number; discarded: number }>;
  on<T extends EventType>(type: T | '*', listener: Listener<T>): () => void;
  dispose(): Promise<void>;
}

export async function createRuntime<S extends ModelSchema | unknown = unknown>(
  options: CreateRuntimeOptions,
): Promise<Runtime<S>> {
  installErrorTransfer();
  const {
    worker: given,
    persistStorage: persistAtStart = true,
    startTimeoutMs = DEFAULT_START_TIMEOUT_MS,
    ...config
  } = options;
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
    if (disposed) throw new DisposedError('the runtime was disposed');
  };

  // Never awaited on start-up: the answer lands in storagePersisted whenever the browser gives it.
  let storagePersisted: boolean | null = null;
  let asking: Promise<boolean | null> | null = null;
  const persistStorage = () => {
    asking ??= requestPersistence().then((persisted) => {
      asking = null;
      storagePersisted = persisted;
      if (!disposed) dispatch({ type: 'storage-persisted', persisted });
      return persisted;
    });
    return asking;
  };
  if (persistAtStart) void persistStorage();

  const channel = new MessageChannel();
  const inference = new InferenceClient(channel.port1);
  let deviceId: string;
  try {
    ({ deviceId } = await withDeadline(
      remote.init(config, proxy(dispatch), transfer(channel.port2, [channel.port2])),
      startTimeoutMs,
      () => new TimeoutError(`the runtime worker did not start within ${startTimeoutMs} ms (startTimeoutMs)`),
    ));
  } catch (error) {
    // A worker that failed or never answered is of no use: free it, and the page's side.
    disposed = true;
    inference.close();
    remote[releaseProxy]();
    worker.terminate();
    listeners.clear();
    throw error;
  }

  // The schema's types are the app's promise; on the wire a sequence is untyped (the worker checks it).
  const runSequence = async (model: string, call: unknown): Promise<never> => {
    live();
    return (await inference.runSequence(model, call as SequenceRequest)) as never;
  };
  const handleOf = (name: string): ModelHandle => ({
    name,
    run: async (inputs) => {
      live();
      return inference.run(name, inputs);
    },
    runSequence: (call) => runSequence(name, call),
    status: async () => {
      live();
      return remote.modelStatus(name);
    },
  });

  // Checks live in the page, which alone sees visibility; each call crosses to the worker.
  const intervalMs = config.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS;
  const schedule =
    intervalMs > 0 ? new CheckSchedule({ intervalMs, check: () => remote.checkForUpdates() }) : null;

  const runtime: Runtime = {
    deviceId,
    get storagePersisted() {
      return storagePersisted;
    },
    persistStorage,
    async load(model) {
      live();
      await remote.load(model);
      return handleOf(model);
    },
    async run(model, inputs) {
      live();
      return inference.run(model, inputs);
    },
    runSequence: (model, call) => runSequence(model, call),
    async reset(model) {
      live();
      return remote.reset(model);
    },
    async checkForUpdates() {
      live();
      return remote.checkForUpdates();
    },
    async status() {
      live();
      return { ...(await remote.status()), storagePersisted };
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
      schedule?.stop();
      await remote.dispose().catch(() => {});
      inference.close();
      remote[releaseProxy]();
      worker.terminate();
      listeners.clear();
    },
  };
  return runtime as unknown as Runtime<S>;
}
