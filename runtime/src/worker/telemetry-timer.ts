import { sendWorkerTelemetry, type WorkerTelemetry } from './worker-telemetry.ts';

/**
 * Sends the worker's telemetry every `everyMs` (a minute when not set; 0 or less never) until the
 * returned stop is called. Update checks have no timer in the worker: the page schedules them
 * (check-schedule.ts), as only the page sees its visibility.
 */
export function startTelemetryTimer(
  telemetry: WorkerTelemetry | null,
  everyMs: number | undefined,
): () => void {
  const every = everyMs ?? 60_000;
  if (!telemetry || !(every > 0)) return () => {};
  const timer = setInterval(() => void sendWorkerTelemetry(telemetry).catch(() => {}), every);
  return () => clearInterval(timer);
}
