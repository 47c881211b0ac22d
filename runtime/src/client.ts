import { DisposedError, TimeoutError } from '@edgeship/protocol/errors';
import { proxy, type Remote, releaseProxy, wrap } from 'comlink';
import { CheckSchedule, DEFAULT_CHECK_INTERVAL_MS } from './check-schedule.ts';
import { DEFAULT_ENGINE_START_BOUND, EngineStartTimeoutError, engineStartLimitMs } from './engine-start.ts';
import type {
  Carried,
  CarryMap,
  InputsOf,
  ModelHandle,
  ModelName,
  ModelSchema,
  OutputsOf,
  Predicted,
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
import type { FeedbackResult, OutcomeOptions } from './worker/predictions.ts';
import type { SequenceRequest } from './worker/sequence.ts';

export interface CreateRuntimeOptions extends RuntimeConfig {
  /**
   * Override where the worker script comes from (bundlers resolve the default): a function that
   * makes one, so a worker stuck in an engine start can be replaced, or a Worker (then a stuck
   * start fails with EngineStartTimeoutError at once, without a restart).
   */
  worker?: Worker | (() => Worker);
  /**
   * Ask the browser to keep this origin's storage under pressure (default true), so the cached
   * models survive eviction. Workers cannot ask; the page does, in the background: Firefox answers
   * only once the user answers its permission prompt, so start-up never waits for it. False: ask
   * only when the app calls `runtime.persistStorage()` (e.g. after a user gesture).
   */
  persistStorage?: boolean;
  /** createRuntime rejects with E_TIMEOUT when the worker has not started in this many ms (default 60 s). */
  startTimeoutMs?: number;
  /**
   * The bound on each engine start (a stored release read, its engine created, health-checked):
   * this many ms (default 30 s) plus 1 s per MiB of the release's files. Past it the worker is
   * replaced by a fresh one and the calls that waited are tried once more there, under four times
   * the bound (a start that is only slow finishes there); past that, they reject with
   * EngineStartTimeoutError (E_TIMEOUT, phase 'engine-start'). Each autotune
   * trial is one such step (its nested worker is also bounded inside the worker, 60 s, then that
   * config is skipped).
   */
  engineStartTimeoutMs?: number;
}

// Generous: a first visit on a slow network downloads the worker bundle (TF.js included) inside it.
const DEFAULT_START_TIMEOUT_MS = 60_000;
// How long dispose() waits for the worker to close its engines and store before terminating it.
const DISPOSE_WAIT_MS = 5_000;

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
  run<M extends ModelName<S>>(
    model: M,
    inputs: Tensors<InputsOf<S, M>>,
  ): Promise<Predicted<Tensors<OutputsOf<S, M>>>>;
  /**
   * The app's ground truth for an earlier run (`outputs.predictionId`): for a classifier (its
   * release's `monitoring.classes`, or the binary pair of its `decision`), a confusion count for
   * the release that made the prediction, sent with telemetry. A label is a class name, index or
   * (binary) boolean; one that is none of them is E_INPUT. Not counted (`recorded: false`) when
   * the prediction is forgotten (more than 10,000 runs ago, or before a reload).
   */
  feedback(predictionId: string, truth: { label: string | number | boolean }): Promise<FeedbackResult>;
  /**
   * A named outcome (`accepted`, `converted`; a number, or a boolean as 1/0), summed per release
   * as count, sum and sum of squares: for the release of `options.predictionId`, else for the
   * loaded release of `options.model` (or of the only model loaded).
   */
  outcome(name: string, value: number | boolean, options?: OutcomeOptions): Promise<FeedbackResult>;
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

/** One runtime worker and the page's ends of its two channels. */
interface Link {
  worker: Worker;
  remote: Remote<RuntimeWorkerApi>;
  inference: InferenceClient;
  /** Rejects once the page gave up on this worker (an engine start past its bound). */
  lost: Promise<never>;
  lose(error: EngineStartTimeoutError): void;
  /** Whether calls that waited on this worker when it was lost are tried in its replacement. */
  retry: boolean;
  /** The bound of each engine start under way, by model and release. */
  starts: Map<string, ReturnType<typeof setTimeout>>;
  /**
   * Opened in place of a lost worker: each of its starts has the longer bound, every model's and
   * not only the one that was stuck (a device slow enough to pass one bound is slow for the next
   * model too, and a second loss would start the models over in a third worker).
   */
  replacement: boolean;
}

export async function createRuntime<S extends ModelSchema | unknown = unknown>(
  options: CreateRuntimeOptions,
): Promise<Runtime<S>> {
  installErrorTransfer();
  const {
    worker: given,
    persistStorage: persistAtStart = true,
    startTimeoutMs = DEFAULT_START_TIMEOUT_MS,
    engineStartTimeoutMs = DEFAULT_ENGINE_START_BOUND.baseMs,
    ...config
  } = options;
  let givenUsed = false;
  // Null: no worker can be made (the app gave one Worker, and it is spent).
  const makeWorker = (): Worker | null => {
    if (typeof given === 'function') return given();
    if (given) {
      if (givenUsed) return null;
      givenUsed = true;
      return given;
    }
    return new Worker(new URL('./worker/worker.ts', import.meta.url), {
      type: 'module',
      name: 'edgeship-runtime',
    });
  };
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

  // The page bounds every engine start (the worker announces each, activation.ts): in Firefox
  // ESR, onnxruntime-web's first WASM start in a worker now and then never returns, and nothing
  // in that worker can be relied on to notice (ARCHITECTURE.md, "Firefox"). A start past its
  // bound costs the worker: a fresh one takes its place, loads the models the app had loaded and
  // runs the calls that waited, once. Timeouts in a row (no start finished in between) reject.
  let current: Link | null = null;
  let timeoutsInARow = 0;
  const loadedModels = new Set<string>();
  const closeLink = (link: Link) => {
    for (const timer of link.starts.values()) clearTimeout(timer);
    link.starts.clear();
    link.inference.close();
    link.remote[releaseProxy]();
    link.worker.terminate();
  };
  const onWorkerEvent = (link: Link, event: RuntimeEvent) => {
    if (link !== current) return; // a replaced worker's last words
    if (event.type === 'engine-starting' || event.type === 'engine-started') {
      const key = `${event.model}\u0000${event.release}`;
      clearTimeout(link.starts.get(key));
      link.starts.delete(key);
      // Autotune's probes too: each trial bounds its nested worker (probe.ts), but in Firefox the
      // runtime worker itself stopped answering during a trial (its own trial timer never fired).
      if (event.type === 'engine-starting') {
        const limitMs = engineStartLimitMs(
          event.bytes,
          { baseMs: engineStartTimeoutMs, msPerMiB: DEFAULT_ENGINE_START_BOUND.msPerMiB },
          timeoutsInARow > 0 || link.replacement,
        );
        const timer = setTimeout(() => stuck(link, event.model, event.release, limitMs), limitMs);
        link.starts.set(key, timer);
      }
      if (event.type === 'engine-started') timeoutsInARow = 0;
    }
    dispatch(event);
  };
  const stuck = (link: Link, model: string, release: string, timeoutMs: number) => {
    if (link !== current || disposed) return;
    const error = new EngineStartTimeoutError(model, release, timeoutMs, timeoutsInARow > 0);
    link.retry = timeoutsInARow === 0;
    timeoutsInARow++;
    current = null;
    link.lose(error);
    closeLink(link);
    // Nothing is recorded against the release: the worker that would have is gone, and the cause
    // (a stuck engine start) says nothing about the model. A later load tries it again.
    if (link.retry) {
      dispatch({ type: 'worker-restarted', model, release, timeoutMs });
      startReplacing(replaceLink());
    }
  };

  const openLink = async (replacement = false): Promise<{ link: Link; deviceId: string }> => {
    const worker = makeWorker();
    if (!worker) {
      throw new DisposedError('the runtime worker was lost and the app gave no way to make another');
    }
    // Comlink gets a MessageChannel; the worker's own channel carries inference (inference-channel.ts).
    const channel = new MessageChannel();
    worker.postMessage({ connect: channel.port2 }, [channel.port2]);
    const inference = new InferenceClient(worker);
    let reject!: (error: EngineStartTimeoutError) => void;
    const lost = new Promise<never>((_, no) => {
      reject = no;
    });
    lost.catch(() => {});
    const link: Link = {
      worker,
      remote: wrap<RuntimeWorkerApi>(channel.port1),
      inference,
      lost,
      // Runs wait on the inference channel, not on `lost`: they are failed here.
      lose: (error) => {
        reject(error);
        inference.fail(error);
      },
      retry: false,
      starts: new Map(),
      replacement,
    };
    current = link;
    try {
      const { deviceId } = await withDeadline(
        link.remote.init(
          config,
          proxy((event: RuntimeEvent) => onWorkerEvent(link, event)),
        ),
        startTimeoutMs,
        () =>
          new TimeoutError(`the runtime worker did not start within ${startTimeoutMs} ms (startTimeoutMs)`),
      );
      return { link, deviceId };
    } catch (error) {
      // A worker that failed or never answered is of no use: free it, and the page's side.
      if (current === link) current = null;
      closeLink(link);
      throw error;
    }
  };
  /** A fresh worker in place of a lost one, with the models the app had loaded loaded again. */
  const replaceLink = async (): Promise<Link> => {
    const { link } = await openLink(true);
    for (const model of loadedModels) await Promise.race([link.remote.load(model), link.lost]);
    return link;
  };
  let replacing: Promise<Link> | null = null;
  const startReplacing = (next: Promise<Link>) => {
    replacing = next;
    const settled = () => {
      if (replacing === next) replacing = null;
    };
    next.then(settled, settled);
  };
  const linkNow = (): Promise<Link> => {
    if (replacing) return replacing;
    if (current) return Promise.resolve(current);
    // The last worker was lost with no restart left: the next call starts a fresh one.
    startReplacing(openLink().then(({ link }) => link));
    return replacing!;
  };
  /** `fn` on the current worker; `retry`: once more in the replacement if that worker is lost meanwhile. */
  const call = async <T>(fn: (link: Link) => Promise<T>, retry: boolean): Promise<T> => {
    live();
    const link = await linkNow();
    try {
      return await Promise.race([fn(link), link.lost]);
    } catch (error) {
      if (!(error instanceof EngineStartTimeoutError) || !retry || !link.retry || disposed) throw error;
      const next = await linkNow();
      return await Promise.race([fn(next), next.lost]);
    }
  };

  let deviceId: string;
  try {
    ({ deviceId } = await openLink());
  } catch (error) {
    disposed = true;
    listeners.clear();
    throw error;
  }

  // The schema's types are the app's promise; on the wire a sequence is untyped (the worker checks it).
  // Runs are not tried again in a replacement worker: their inputs were transferred. So a model's
  // first run loads it first (a load is tried again there): an engine start that sticks (Firefox,
  // ARCHITECTURE.md) then costs a worker, not the app's call.
  // The hot path: a loaded model with a worker in place goes straight to its channel (no awaits,
  // no race with `lost`, whose reactions would pile up on a promise that never settles; a lost
  // worker fails its runs).
  const onChannel = <T>(model: string, fn: (inference: InferenceClient) => Promise<T>): Promise<T> => {
    if (!loadedModels.has(model)) return load(model).then(() => onChannel(model, fn));
    return !disposed && current && !replacing
      ? fn(current.inference)
      : call((link) => fn(link.inference), false);
  };
  const runSequence = (model: string, request: unknown): Promise<never> =>
    onChannel(model, (inference) =>
      inference.runSequence(model, request as SequenceRequest),
    ) as Promise<never>;
  const run = (model: string, inputs: Parameters<InferenceClient['run']>[1]) =>
    onChannel(model, (inference) => inference.run(model, inputs));
  const load = async (model: string) => {
    await call((link) => link.remote.load(model), true);
    loadedModels.add(model);
  };
  const handleOf = (name: string): ModelHandle => ({
    name,
    run: (inputs) => run(name, inputs),
    runSequence: (request) => runSequence(name, request),
    status: () => call((link) => link.remote.modelStatus(name), true),
    feedback: (predictionId, truth) => feedback(predictionId, truth),
    outcome: (outcome, value, options) =>
      call((link) => link.remote.outcome(outcome, value, { ...options, model: name }), false),
  });
  const feedback = (predictionId: string, truth: { label: string | number | boolean }) =>
    call((link) => link.remote.feedback(predictionId, truth.label), false);
  const checkForUpdates = () => call((link) => link.remote.checkForUpdates(), true);

  // Checks live in the page, which alone sees visibility; each call crosses to the worker.
  const intervalMs = config.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS;
  const schedule = intervalMs > 0 ? new CheckSchedule({ intervalMs, check: checkForUpdates }) : null;

  const runtime: Runtime = {
    deviceId,
    get storagePersisted() {
      return storagePersisted;
    },
    persistStorage,
    async load(model) {
      await load(model);
      return handleOf(model);
    },
    run: (model, inputs) => run(model, inputs),
    runSequence: (model, request) => runSequence(model, request),
    feedback,
    outcome: (name, value, options) => call((link) => link.remote.outcome(name, value, options), false),
    reset: (model) => call((link) => link.remote.reset(model), true),
    checkForUpdates,
    async status() {
      return { ...(await call((link) => link.remote.status(), true)), storagePersisted };
    },
    sendTelemetry: () => call((link) => link.remote.sendTelemetry(), true),
    on(type, listener) {
      const entry = { type, listener: listener as (event: RuntimeEvent) => void };
      listeners.add(entry);
      return () => listeners.delete(entry);
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      schedule?.stop();
      const link = current;
      current = null;
      // A replacement still starting is freed once it has.
      void replacing?.then(closeLink, () => {});
      if (link) {
        // A worker stuck in an engine start never answers: it is terminated all the same.
        await withDeadline(link.remote.dispose(), DISPOSE_WAIT_MS, () => new TimeoutError('dispose')).catch(
          () => {},
        );
        closeLink(link);
      }
      listeners.clear();
    },
  };
  return runtime as unknown as Runtime<S>;
}
