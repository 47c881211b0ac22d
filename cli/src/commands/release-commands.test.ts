import { seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { publish, type TestServer } from '../../../test/support/server.ts';
import { startCliServer } from '../../test-data/cli-server.ts';
import { edgeship } from '../../test-data/run-cli.ts';

let t: TestServer;
let dir: string;
const as = (role: 'admin' | 'operator' | 'viewer') => ({
  EDGESHIP_SERVER: t.server.url,
  EDGESHIP_TOKEN: t.server.tokens![role],
});

beforeAll(async () => {
  ({ t, dir } = await startCliServer('release'));
  await publish(t, seededBytes(1000, 9), {
    model: 'carded',
    version: '1.0.0',
    modelCard: { intendedUse: 'Wake word on phones', evaluation: [{ metric: 'accuracy', value: 0.97 }] },
    lineage: { trainingCode: 'git:0123abc' },
    gates: {
      dataset: 'cd'.repeat(32),
      frames: 200,
      results: [{ name: 'accuracy-vs-production', value: 0.005, limit: 0.01 }],
      against: { app: 'demo', channel: 'prod', version: '0.9.0' },
    },
  });
});
afterAll(async () => {
  await t?.stop();
});

it('edgeship policy set, release approve and release show against a real server', async () => {
  const channel = ['--app', 'demo', '--channel', 'prod'];
  const set = await edgeship(['policy', 'set', '--four-eyes', ...channel], dir, as('admin'));
  expect(set.stdout).toContain('approval required, by someone other than the publisher');
  expect(set.stdout).toContain('a canary regressed on segments alone is halted');
  expect(set.code).toBe(0);
  const exclude = await edgeship(
    ['policy', 'set', '--on-segment-regression', 'exclude', '--app', 'demo', '--channel', 'edge', '--json'],
    dir,
    as('admin'),
  );
  expect(exclude.code).toBe(0);
  expect(JSON.parse(exclude.stdout).policy).toEqual({
    requireApproval: false,
    approverNotPublisher: false,
    segmentRegression: 'exclude',
  });

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

it('edgeship policy set --require-gates, and release show prints the signed gates', async () => {
  const channel = ['--app', 'demo', '--channel', 'gated'];
  const set = await edgeship(
    ['policy', 'set', '--require-gates', 'accuracy-vs-production,min-accuracy', ...channel],
    dir,
    as('admin'),
  );
  expect(set.code).toBe(0);
  expect(set.stdout).toContain(
    'no approval required; a canary regressed on segments alone is halted; gates required: accuracy-vs-production, min-accuracy',
  );
  const show = await edgeship(['release', 'show', 'carded', '1.0.0'], dir, as('viewer'));
  expect(show.stdout).toContain(
    'gates (signed): 1 passed on 200 frames of data cdcdcdcdcdcd… against demo/prod production 0.9.0',
  );
  expect(show.stdout).toContain('  gate accuracy-vs-production 0.005 (limit 0.01)');
  const json = JSON.parse(
    (await edgeship(['release', 'show', 'carded', '1.0.0', '--json'], dir, as('viewer'))).stdout,
  );
  expect(json.gates.results).toHaveLength(1);
});
