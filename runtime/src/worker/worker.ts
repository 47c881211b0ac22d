/// <reference lib="webworker" />

import { DisposedError } from '@edgeship/protocol';
import { expose } from 'comlink';
import { PROBE_WORKER_NAME } from '../engines/probe.ts';
import { serveProbe } from '../engines/probe-serve.ts';
import { PACK_WRITER_NAME } from '../store/pack-writer.ts';
import { servePackWriter } from '../store/pack-writer-serve.ts';
import type { RuntimeWorkerApi } from './api.ts';
import { installErrorTransfer } from './error-transfer.ts';
import { serveInference } from './inference-channel.ts';
import { RuntimeCore } from './runtime-core.ts';

let core: RuntimeCore | null = null;

// Events reach the page through their own Comlink port, and the order of messages on two ports
// is not defined: Firefox delivered `rolled-back` after the checkForUpdates() reply that caused
// it. Each reply therefore waits until the page has run the listeners of the events before it.
const delivering = new Set<Promise<unknown>>();

async function afterEvents<T>(result: Promise<T>): Promise<T> {
  try {
    return await result;
  } finally {
    await Promise.all(delivering);
  }
}

function requireCore(): RuntimeCore {
  if (!core) throw new DisposedError('the runtime is not initialised');
  return core;
}

const api: RuntimeWorkerApi = {
  async init(config, onEvent) {
    core = await RuntimeCore.create(config, (event) => {
      const delivered = Promise.resolve(onEvent(event)).catch(() => {});
      delivering.add(delivered);
      void delivered.finally(() => delivering.delete(delivered));
    });
    return { deviceId: core.deviceId };
  },
  load: (model) => afterEvents(requireCore().load(model)),
  checkForUpdates: () => afterEvents(requireCore().checkForUpdates()),
  status: () => requireCore().status(),
  modelStatus: (model) => requireCore().modelStatus(model),
  reset: (model) => requireCore().reset(model),
  feedback: async (predictionId, label) => requireCore().feedback(predictionId, label),
  outcome: async (name, value, options) => requireCore().outcome(name, value, options),
  sendTelemetry: () => afterEvents(requireCore().sendTelemetry()),
  async dispose() {
    await core?.dispose();
    core = null;
  },
};

declare const self: DedicatedWorkerGlobalScope;

// Autotune times candidates in nested copies of this same script (probe.ts): those answer one probe.
// Packs are written in another nested copy (pack-writer.ts), off the thread downloads fetch on.
if (self.name === PROBE_WORKER_NAME) serveProbe(self);
else if (self.name === PACK_WRITER_NAME) servePackWriter(self);
else {
  installErrorTransfer();
  // The page's first message hands over comlink's port; every later message on this scope is an
  // inference request (inference-channel.ts), answered once init() has made the core.
  self.onmessage = (event: MessageEvent<{ connect?: MessagePort }>) => {
    const port = event.data?.connect;
    if (!(port instanceof MessagePort)) return;
    expose(api, port);
    serveInference(self, requireCore);
  };
}
