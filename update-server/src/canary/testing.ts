import {
  publish,
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from '../../../test/support/server.ts';
import { type WebhookReceiver, webhookReceiver } from '../../../test/support/webhook-receiver.ts';
import { newInstall, uniformMonitoring } from '../telemetry/testing.ts';

export interface CanaryTestServer<T = Record<string, unknown>> {
  t: TestServer;
  /** What the canary analysis posted (halts, verdicts). */
  hooks: WebhookReceiver<T>;
  stop(): Promise<void>;
}

/**
 * The canary tests' server, on SQLite or PostgreSQL: its analysis set by `canary` and posting its
 * webhooks to a receiver here, devices allowed 20 batches a window, and `model` published at
 * 1.0.0, 1.1.0 and 1.2.0 (monitored; the bytes of each version from `bytesOf`) with 1.0.0 in
 * production of demo-app/stable.
 */
export async function canaryTestServer<T = Record<string, unknown>>(
  dialect: 'sqlite' | 'postgres',
  model: string,
  canary: TestServerOptions['canary'],
  bytesOf: (version: string) => Uint8Array,
): Promise<CanaryTestServer<T>> {
  const hooks = await webhookReceiver<T>();
  let t: TestServer | undefined;
  try {
    t = await startTestServer({
      postgres: dialect === 'postgres',
      webhookUrl: hooks.url,
      telemetry: { deviceCap: { batchesPerWindow: 20, inferencesPerWindow: 1_000_000 } },
      canary,
    });
    await publishMonitored(t, model, ['1.0.0', '1.1.0', '1.2.0'], bytesOf);
  } catch (error) {
    await t?.stop();
    await hooks.close();
    throw error;
  }
  const server = t;
  return {
    t: server,
    hooks,
    async stop() {
      await server.stop();
      await hooks.close();
    },
  };
}

/**
 * Publishes `model` at each version (monitored; the bytes of each from `bytesOf`) and puts the
 * first in production of demo-app/stable.
 */
export async function publishMonitored(
  t: TestServer,
  model: string,
  versions: readonly string[],
  bytesOf: (version: string) => Uint8Array,
): Promise<void> {
  for (const version of versions)
    await publish(t, bytesOf(version), { model, version, monitoring: uniformMonitoring() });
  await t.operator.promoteRelease('demo-app', 'stable', model, versions[0]!);
}

/**
 * `count` new installs on `prefixes` networks 127.`net`.x.0/24, one source address each: the
 * server counts installs per /24 (caps, and the prefixes a verdict needs).
 */
export function installsOnNetworks(
  count: number,
  prefixes: number,
  net: number,
): Array<{ id: string; from: string }> {
  return Array.from({ length: count }, (_, i) => ({
    id: newInstall(),
    from: `127.${net}.${i % prefixes}.${1 + Math.floor(i / prefixes)}`,
  }));
}
