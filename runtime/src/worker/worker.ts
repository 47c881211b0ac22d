/// <reference lib="webworker" />

import { EdgeshipError } from '@edgeship/protocol';
import { expose, transfer } from 'comlink';
import type { RuntimeWorkerApi } from './api.ts';
import { buffersOf } from './buffers.ts';
import { installErrorTransfer } from './error-transfer.ts';
import { RuntimeCore } from './runtime-core.ts';

installErrorTransfer();

let core: RuntimeCore | null = null;

function requireCore(): RuntimeCore {
  if (!core) throw new EdgeshipError('E_DISPOSED', 'the runtime is not initialised');
  return core;
}

const api: RuntimeWorkerApi = {
  async init(config, onEvent) {
    core = await RuntimeCore.create(config, (event) => {
      void Promise.resolve(onEvent(event)).catch(() => {});
    });
    return { deviceId: core.deviceId };
  },
  load: (model) => requireCore().load(model),
  async run(model, inputs) {
    const outputs = await requireCore().run(model, inputs);
    return transfer(outputs, buffersOf(outputs));
  },
  checkForUpdates: () => requireCore().checkForUpdates(),
  status: () => requireCore().status(),
  sendTelemetry: () => requireCore().sendTelemetry(),
  async dispose() {
    await core?.dispose();
    core = null;
  },
};

expose(api);
