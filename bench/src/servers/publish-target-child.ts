// A child process running the real update server (SQLite, a fresh data directory) for the
// publish benchmark; prints its URL, pid, publisher token and the publisher key file, stops on
// SIGTERM.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestServer } from '../../../test/support/server.ts';

const t = await startTestServer({ rateLimits: { publicPerMinute: 100_000_000, adminPerMinute: 100_000 } });
const keyFile = join(t.dataDir, 'bench-publisher.key.json');
await writeFile(keyFile, JSON.stringify(t.publisherKey));
process.stdout.write(
  `${JSON.stringify({ event: 'listening', url: t.server.url, pid: process.pid, token: t.server.tokens!.publisher, keyFile })}\n`,
);
process.once('SIGTERM', () => {
  void t.stop().finally(() => process.exit(0));
});
