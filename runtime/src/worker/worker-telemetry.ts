import { deviceSegmentOf, type InstallKey, type NavigatorLike } from '@edgeship/protocol';
import { TelemetryCollector } from '../telemetry/collector.ts';
import { TelemetryOutbox } from '../telemetry/outbox.ts';
import { TelemetryReporter } from '../telemetry/reporter.ts';
import { type FlushResult, TelemetrySender } from '../telemetry/sender.ts';
import { RUNTIME_VERSION } from '../version.ts';
import type { RuntimeConfig } from './config.ts';

/** What the worker observes (collector), seals into the outbox (reporter) and sends (sender). */
export interface WorkerTelemetry {
  collector: TelemetryCollector;
  reporter: TelemetryReporter;
  sender: TelemetrySender;
}

export async function openWorkerTelemetry(
  config: RuntimeConfig,
  prefix: string,
  installKey: InstallKey,
): Promise<WorkerTelemetry> {
  const collector = new TelemetryCollector();
  const outbox = await TelemetryOutbox.open(`${prefix}-telemetry`);
  return {
    collector,
    reporter: new TelemetryReporter(
      collector,
      outbox,
      {
        deviceId: installKey.deviceId,
        app: config.app,
        channel: config.channel,
        runtimeVersion: RUNTIME_VERSION,
      },
      undefined,
      deviceSegmentOf(globalThis.navigator as NavigatorLike | undefined),
    ),
    sender: new TelemetrySender(outbox, {
      endpoint: `${config.server.replace(/\/$/, '')}/v1/telemetry`,
      installKey: installKey.privateKey,
    }),
  };
}

/** Seals what was observed into the outbox and sends what is queued. */
export async function sendWorkerTelemetry(telemetry: WorkerTelemetry | null): Promise<FlushResult> {
  if (!telemetry) return { sent: 0, discarded: 0 };
  await telemetry.reporter.seal();
  return telemetry.sender.flush();
}
