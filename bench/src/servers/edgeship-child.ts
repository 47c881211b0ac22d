// A child process running the real update server (SQLite, or PostgreSQL with DATABASE_URL) with
// Silero VAD published and promoted; prints one JSON line describing it, stops on SIGTERM.
import { SILERO_CONTRACT, sileroBytes } from '../../../test/support/models.ts';
import { publish, startTestServer } from '../../../test/support/server.ts';

const t = await startTestServer({
  databaseUrl: process.env.BENCH_DATABASE_URL || undefined,
  rateLimits: { publicPerMinute: 100_000_000, adminPerMinute: 100_000 },
  // The load generator is one address: lift the per-address telemetry limit out of the way.
  telemetry: { perAddressPerMinute: 100_000_000 },
});
const bytes = await sileroBytes();
const signed = await publish(t, bytes, { model: 'vad', version: '1.0.0', ...SILERO_CONTRACT });
await t.operator.promoteRelease('demo-app', 'stable', 'vad', '1.0.0');
const manifestPath = '/v1/apps/demo-app/channels/stable/manifest';
const response = await fetch(`${t.server.url}${manifestPath}`);
const manifest = new Uint8Array(await response.arrayBuffer());
process.stdout.write(
  `${JSON.stringify({
    event: 'listening',
    url: t.server.url,
    pid: process.pid,
    manifestPath,
    etag: response.headers.get('etag'),
    manifestBase64: Buffer.from(manifest).toString('base64'),
    chunks: signed.signed.files[0]!.chunks,
  })}\n`,
);
const stop = async () => {
  await t.stop();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
