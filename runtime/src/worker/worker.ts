/// <reference lib="webworker" />

import { EdgeshipError } from '@edgeship/protocol';
import { expose } from 'comlink';
import { PROBE_WORKER_NAME } from '../engines/probe.ts';
import { serveProbe } from '../engines/probe-serve.ts';
import type { RuntimeWorkerApi } from './api.ts';
import { installErrorTransfer } from './error-transfer.ts';
import { serveInference } from './inference-channel.ts';
import { RuntimeCore } from './runtime-core.ts';

let core: RuntimeCore | null = null;

function requireCore(): RuntimeCore {
  if (!core) throw new EdgeshipError('E_DISPOSED', 'the runtime is not initialised');
  return core;
}

const api: RuntimeWorkerApi = {
  async init(config, onEvent, inference) {
    core = await RuntimeCore.create(config, (event) => {
      void Promise.resolve(onEvent(event)).catch(() => {});
    });
    serveInference(inference, requireCore);
    return { deviceId: core.deviceId };
  },
  load: (model) => requireCore().load(model),
  checkForUpdates: () => requireCore().checkForUpdates(),
  status: () => requireCore().status(),
  modelStatus: (model) => requireCore().modelStatus(model),
  reset: (model) => requireCore().reset(model),
  sendTelemetry: () => requireCore().sendTelemetry(),
  async dispose() {
    await core?.dispose();
    core = null;
  },
};

declare const self: DedicatedWorkerGlobalScope;

// Autotune times candidates in nested copies of this same script (probe.ts): those answer one probe.
if (self.name === PROBE_WORKER_NAME) serveProbe(self);
else {
  installErrorTransfer();
  expose(api);
}
