import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { edgeship } from '../../test-data/run-cli.ts';

let t: TestServer;
let dir: string;
const as = (role: 'admin' | 'operator' | 'viewer') => ({
  EDGESHIP_SERVER: t.server.url,
  EDGESHIP_TOKEN: t.server.tokens![role],
});

beforeAll(async () => {
  t = await startTestServer();
  dir = await mkdtemp(join(tmpdir(), 'edgeship-release-'));
  await publish(t, seededBytes(1000, 9), {
    model: 'carded',
    version: '1.0.0',
    modelCard: { intendedUse: 'Wake word on phones', evaluation: [{ metric: 'accuracy', value: 0.97 }] },
    lineage: { trainingCode: 'git:0123abc' },
  });
});
afterAll(async () => {
  await t?.stop();
});

it('edgeship policy set, release approve and release show against a real server', async () => {
  const channel = ['--app', 'demo', '--channel', 'prod'];
  const set = await edgeship(['policy', 'set', '--four-eyes', ...channel], dir, as('admin'));
  expect(set.stdout).toContain('approval required, by someone other than the publisher');
  expect(set.code).toBe(0);

  const approve = await edgeship(
    ['release', 'approve', 'carded', '1.0.0', ...channel, '--json'],
    dir,
    as('operator'),
  );
  expect(approve.code).toBe(0);
  expect(JSON.parse(approve.stdout)).toMatchObject({ app: 'demo', channel: 'prod', version: '1.0.0' });

  const again = await edgeship(['release', 'approve', 'carded', '1.0.0', ...channel], dir, as('operator'));
  expect(again.stderr).toContain('E_CONFLICT');
  expect(again.code).toBe(1);

  const show = await edgeship(['release', 'show', 'carded', '1.0.0'], dir, as('viewer'));
  expect(show.code).toBe(0);
  expect(show.stdout).toContain('intended use: Wake word on phones');
  expect(show.stdout).toContain('evaluation: accuracy 0.97');
  expect(show.stdout).toContain('lineage (self-reported) trainingCode: "git:0123abc"');
  expect(show.stdout).toMatch(/approved for demo\/prod by \S+ at 20/);
});
