import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../../test/support/server.ts';

/**
 * What a CLI test against a server starts from: a real update server on loopback
 * (test/support/server.ts; the test stops it) and a fresh folder for the CLI to run in.
 */
export async function startCliServer(tag: string): Promise<{ t: TestServer; dir: string }> {
  const t = await startTestServer();
  return { t, dir: await mkdtemp(join(tmpdir(), `edgeship-${tag}-`)) };
}
