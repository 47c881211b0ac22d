import type { ErrorCode } from '@edgeship/protocol';
import type { ModelStore } from '../store/model-store.ts';
import type { TelemetryCollector } from '../telemetry/collector.ts';
import type { UpdateEvent } from '../update/updater.ts';
import type { Activation } from './activation.ts';
import { forcedBackend, type RuntimeConfig } from './config.ts';

/**
 * The update pipeline in telemetry: each finished download (bytes, time, resumed or not) and each
 * update failure by code, counted under the release and the backend the device runs the model on
 * (a download has no backend of its own; before any engine ran, the forced one or WASM).
 */
export function pipelineTelemetry(
  collector: TelemetryCollector,
  store: ModelStore,
  config: RuntimeConfig,
  activation: () => Activation,
): (event: UpdateEvent) => void {
  const backendOf = (model: string) =>
    activation().loaded(model)?.backend.chosen.backend ?? forcedBackend(config) ?? 'wasm';
  return (event) => {
    if (event.type === 'update-downloaded') {
      const { download } = event;
      void store.getRelease(event.release).then((installed) => {
        if (!installed) return;
        collector.recordDownload(
          {
            model: installed.model,
            version: installed.version,
            backend: backendOf(installed.model),
            role: 'active',
          },
          download.bytesFetched,
          download.ms,
          download.chunksReused > 0,
        );
      });
    } else if (event.type === 'update-failed') {
      collector.recordUpdateFailure(
        { model: event.model, version: event.version, backend: backendOf(event.model), role: 'active' },
        event.code as ErrorCode,
      );
    }
  };
}
