import { seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { publish, type TestServer } from '../../../test/support/server.ts';
import { startCliServer } from '../../test-data/cli-server.ts';
import { edgeship } from '../../test-data/run-cli.ts';

let t: TestServer;
let dir: string;
const as = (role: 'operator' | 'viewer') => ({
  EDGESHIP_SERVER: t.server.url,
  EDGESHIP_TOKEN: t.server.tokens![role],
});
const channel = ['--app', 'demo', '--channel', 'prod'];

beforeAll(async () => {
  ({ t, dir } = await startCliServer('alerts'));
  await publish(t, seededBytes(1000, 21), { model: 'sched', version: '1.0.0' });
  await publish(t, seededBytes(1000, 22), { model: 'sched', version: '1.1.0' });
  await t.operator.promoteRelease('demo', 'prod', 'sched', '1.0.0');
});
afterAll(async () => {
  await t?.stop();
});

it('edgeship alerts set and show against a real server', async () => {
  const set = await edgeship(
    ['alerts', 'set', '--drift-psi', '0.25', '--error-rate', '0.02', '--window-minutes', '10', ...channel],
    dir,
    as('operator'),
  );
  expect(set.stderr).toBe('');
  expect(set.code).toBe(0);
  expect(set.stdout).toContain(
    'demo/prod: error rate > 0.02, drift PSI > 0.25 over 10 min (from 500 samples',
  );

  const show = await edgeship(['alerts', 'show', ...channel, '--json'], dir, as('viewer'));
  expect(show.code).toBe(0);
  expect(JSON.parse(show.stdout)).toMatchObject({
    config: { thresholds: { driftPsi: 0.25, errorRate: 0.02 }, windowMinutes: 10, retrainAfterMinutes: 360 },
    episodes: [],
  });

  const bad = await edgeship(['alerts', 'set', '--error-rate', '2', ...channel], dir, as('operator'));
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('--error-rate must be a number from 0 to 1');
});

it('edgeship rollout start --schedule starts at the first stage; rollout schedule shows it', async () => {
  const none = await edgeship(['rollout', 'start', 'sched', '1.1.0', ...channel], dir, as('operator'));
  expect(none.code).toBe(2);
  expect(none.stderr).toContain('give a percent, or --schedule');

  const start = await edgeship(
    [
      'rollout',
      'start',
      'sched',
      '1.1.0',
      '--schedule',
      '10,50,100',
      '--min-stage-minutes',
      '30',
      '--min-samples',
      '2000',
      ...channel,
    ],
    dir,
    as('operator'),
  );
  expect(start.stderr).toBe('');
  expect(start.code).toBe(0);
  expect(start.stdout).toContain('to 10% of demo/prod (canary)');
  expect(start.stdout).toContain(
    'schedule [10%] -> 50% -> 100%: running; each stage at least 30 min and 2000 canary inferences',
  );

  const show = await edgeship(['rollout', 'schedule', 'sched', ...channel, '--json'], dir, as('viewer'));
  expect(show.code).toBe(0);
  expect(JSON.parse(show.stdout)).toMatchObject({
    stages: [1000, 5000, 10_000],
    stage: 0,
    minStageMs: 1_800_000,
  });
});
