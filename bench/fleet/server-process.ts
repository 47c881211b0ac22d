import { parseArgs } from 'node:util';
import { serveUntilSignalled } from '../../update-server/src/main.ts';
import { startServer } from '../../update-server/src/server.ts';

/**
 * The update server as its own process for the fleet simulator: the same startServer as
 * `edgeship-server`, with the limits a simulated fleet behind one loopback address needs (every
 * device shares 127.0.0.1) and the canary analysis on a short timer (time is compressed).
 */
const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    'webhook-url': { type: 'string' },
    'canary-interval-ms': { type: 'string', default: '1000' },
    'canary-throttle-ms': { type: 'string', default: '250' },
  },
});
const server = await startServer({
  dataDir: values['data-dir']!,
  port: 0,
  createKeys: true,
  logLevel: 'warn',
  webhookUrl: values['webhook-url'],
  rateLimits: { publicPerMinute: 10_000_000, adminPerMinute: 10_000_000 },
  telemetry: { perAddressPerMinute: 10_000_000 },
  canary: {
    intervalMs: Number(values['canary-interval-ms']),
    throttleMs: Number(values['canary-throttle-ms']),
  },
});
serveUntilSignalled(server);
