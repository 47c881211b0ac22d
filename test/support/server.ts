import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Release, type SignedRelease, type SigningKeyPair, signRelease } from '@edgeship/protocol';
import { AdminClient, type RunningServer, type ServerOptions, startServer } from '@edgeship/update-server';
import { testRelease } from './trust.ts';

export interface TestServer {
  server: RunningServer;
  dataDir: string;
  publisherKey: SigningKeyPair;
  publisher: AdminClient;
  operator: AdminClient;
  viewer: AdminClient;
  /** Manages tokens (the admin role). */
  admin: AdminClient;
  /** The PostgreSQL database it runs on (none: SQLite in its data directory). */
  databaseUrl?: string;
  stop(opts?: { keepData?: boolean }): Promise<void>;
}

export interface TestServerOptions extends Partial<ServerOptions> {
  /** On PostgreSQL, in a fresh schema that stop() drops (else SQLite, unless databaseUrl says). */
  postgres?: boolean;
}

/** A real update server on loopback with a fresh data directory and a development trust chain. */
export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  if (!opts.postgres) return startOn(opts, async () => {});
  // Loaded only here: the suite module imports vitest.
  const { createTestSchema } = await import('../../update-server/src/storage/registry.suite.ts');
  const schema = await createTestSchema();
  try {
    return await startOn({ ...opts, databaseUrl: schema.url }, () => schema.drop());
  } catch (error) {
    await schema.drop();
    throw error;
  }
}

async function startOn(
  { postgres: _, ...opts }: TestServerOptions,
  dropDatabase: () => Promise<void>,
): Promise<TestServer> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'edgeship-server-')));
  const server = await startServer({ logLevel: 'silent', createKeys: true, ...opts, dataDir });
  const created = server.keys.created;
  const publisherKey =
    created?.publisher ??
    (JSON.parse(
      await (await import('node:fs/promises')).readFile(
        join(opts.keysDir ?? join(dataDir, 'keys'), 'publisher.key.json'),
        'utf8',
      ),
    ) as SigningKeyPair);
  if (!server.tokens) throw new Error('the test server has no bootstrap tokens');
  return {
    server,
    dataDir,
    publisherKey,
    publisher: new AdminClient(server.url, server.tokens.publisher),
    operator: new AdminClient(server.url, server.tokens.operator),
    viewer: new AdminClient(server.url, server.tokens.viewer),
    admin: new AdminClient(server.url, server.tokens.admin),
    ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}),
    async stop({ keepData = false } = {}) {
      await server.close();
      if (keepData) return;
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
      await dropDatabase();
    },
  };
}

/** A signed single-file ONNX-format release over arbitrary bytes (for registry tests). */
export async function makeRelease(
  key: SigningKeyPair,
  bytes: Uint8Array,
  fields: Partial<Release> = {},
): Promise<SignedRelease> {
  return signRelease(await testRelease({ 'model.onnx': bytes }, fields), [key]);
}

/** Uploads and registers a release in one go. */
export async function publish(t: TestServer, bytes: Uint8Array, fields: Partial<Release> = {}) {
  const signed = await makeRelease(t.publisherKey, bytes, fields);
  await t.publisher.uploadRelease(signed, new Map([['model.onnx', bytes]]));
  await t.publisher.registerRelease({ release: signed });
  return signed;
}
