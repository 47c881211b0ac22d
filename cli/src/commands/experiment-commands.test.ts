import { seededBytes } from '@edgeship/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, type TestServer } from '../../../test/support/server.ts';
import { startCliServer } from '../../test-data/cli-server.ts';
import { edgeship } from '../../test-data/run-cli.ts';

let t: TestServer;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  ({ t, dir } = await startCliServer('experiment'));
  await publish(t, seededBytes(50_000, 3), { model: 'kws', version: '1.0.0' });
  await publish(t, seededBytes(50_000, 4), { model: 'kws', version: '1.1.0' });
  await publish(t, seededBytes(50_000, 5), { model: 'kws', version: '1.2.0' });
  await publish(t, seededBytes(50_000, 6), { model: 'kws', version: '1.3.0' });
  await t.operator.promoteRelease('demo', 'beta', 'kws', '1.0.0');
  env = { EDGESHIP_SERVER: t.server.url, EDGESHIP_TOKEN: t.server.tokens!.operator };
});
afterAll(() => t?.stop());

const CHANNEL = ['--app', 'demo', '--channel', 'beta'];

/** `edgeship experiment start kws <args>` on the beta channel: exit code, stderr and output. */
const startExperiment = (args: string[], json = false) =>
  edgeship(['experiment', 'start', 'kws', ...args, ...CHANNEL, ...(json ? ['--json'] : [])], dir, env);

/** An experiment started with --json: its view, after checking it started cleanly. */
async function started(args: string[]) {
  const start = await startExperiment(args, true);
  expect(start.stderr).toBe('');
  expect(start.code).toBe(0);
  return JSON.parse(start.stdout);
}

describe('edgeship experiment against a real server', () => {
  it('starts an experiment with its estimate and shows its verdict', async () => {
    const view = await started([
      '1.1.0',
      ...['--metric', 'outcome:accepted', '--min-effect', '0.05', '--sd', '0.4', '--share', '20'],
    ]);
    expect(view.rollout).toMatchObject({
      release: '1.1.0',
      control: '1.0.0',
      shareBps: 2000,
      mode: 'canary',
    });
    expect(view.spec).toMatchObject({
      metric: { kind: 'outcome', name: 'accepted' },
      design: { alpha: 0.05 },
    });
    expect(view.spec.estimate.installsPerArm).toBeGreaterThan(100);
    expect(view.verdict.decision).toBe('waiting');

    const show = await edgeship(['experiment', 'show', view.rollout.id], dir, env);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(
      /experiment \S+ demo\/beta kws@1\.1\.0 vs 1\.0\.0 \(20%, active\): outcome accepted/,
    );
    expect(show.stdout).toMatch(/estimate: \d+ installs per arm/);
    expect(show.stdout).toMatch(/verdict: waiting/);

    const bad = await startExperiment(['1.1.0', '--metric', 'clicks', '--min-effect', '1']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--metric clicks: use outcome:<name> or accuracy/);
  });

  it('starts one experiment with an arm per --treatment, and shows each arm against production', async () => {
    const view = await started([
      ...['--treatment', '1.1.0', '--treatment', '1.2.0', '--treatment', '1.3.0'],
      ...['--metric', 'accuracy', '--min-effect', '0.05', '--sd', '0.4'],
      ...['--allocation', 'thompson', '--floor', '5'],
    ]);
    // An equal split with the control: a quarter each.
    expect(view.rollout).toMatchObject({
      release: '1.1.0',
      control: '1.0.0',
      shareBps: 7500,
      arms: [
        { release: '1.1.0', shareBps: 2500 },
        { release: '1.2.0', shareBps: 2500 },
        { release: '1.3.0', shareBps: 2500 },
      ],
    });
    expect(view.spec.allocation).toEqual({ kind: 'thompson', floorBps: 500 });
    const show = await edgeship(['experiment', 'show', view.rollout.id], dir, env);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(
      /experiment \S+ demo\/beta kws@1\.1\.0\+1\.2\.0\+1\.3\.0 vs 1\.0\.0 \(25%\/25%\/25%, active\): accuracy/,
    );
    const none = await startExperiment(['--metric', 'accuracy', '--min-effect', '1']);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/name the treatment/);
    // Two arms at 60% each leave no control: the server refuses, the CLI says why.
    const full = await startExperiment([
      ...['1.1.0', '--treatment', '1.2.0', '--share', '60'],
      ...['--metric', 'accuracy', '--min-effect', '1'],
    ]);
    expect(full.code).not.toBe(0);
    expect(full.stderr).toMatch(/leave no control/);
  });
});
