// `edgeship status` against a real server fed signed telemetry over HTTP: the update pipeline per
// release (downloads, failures by code, fallbacks, persisted storage), devices stuck on old
// versions, the canary's split by segment, and a rollout's excluded segments.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rolloutBucket, seededBytes, type TelemetryRecord } from '@edgeship/protocol';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import {
  makeBatch,
  makeRecord,
  newInstalls,
  postBatch,
} from '../../../update-server/src/telemetry/testing.ts';
import { edgeship } from '../../test-data/run-cli.ts';

let t: TestServer;
let dir: string;

beforeAll(async () => {
  t = await startTestServer({
    telemetry: { windowSec: 1, deviceCap: { batchesPerWindow: 20, inferencesPerWindow: 1e6 } },
    canary: {
      throttleMs: 3_600_000,
      intervalMs: 3_600_000,
      policy: { minInstalls: 4, minPrefixes: 2, minSegmentInstalls: 4, minInferences: 100 },
    },
  });
  dir = await mkdtemp(join(tmpdir(), 'edgeship-status-'));
  for (const version of ['1.0.0', '1.1.0']) {
    await publish(t, seededBytes(2000, Number(version.at(2)) + 60), { model: 'kws', version });
  }
}, 60_000);
afterAll(async () => {
  await t?.stop();
});

it('shows the update pipeline, stuck devices and the per-segment split', async () => {
  await t.operator.promoteRelease('demo-app', 'stable', 'kws', '1.0.0');
  const devices = newInstalls(48);
  const browser = (i: number) => (i % 2 === 0 ? 'chrome' : 'firefox');
  const record = (version: string, i: number, update?: TelemetryRecord['update']): TelemetryRecord => ({
    ...makeRecord({ model: 'kws', version, latenciesMs: Array.from({ length: 20 }, (_, k) => 5 + (k % 5)) }),
    segment: { browser: browser(i), browserMajor: 130, os: 'linux', deviceClass: 'mid' },
    ...(update ? { update } : {}),
  });
  const send = async (i: number, r: TelemetryRecord) =>
    expect(
      (await postBatch(t.server.url, makeBatch(devices[i]!, [r]), { from: `127.95.${i % 6}.${i + 1}` }))
        .status,
    ).toBe(202);
  for (let i = 0; i < devices.length; i++) await send(i, record('1.0.0', i));
  const rollout = await t.operator.createRollout({
    app: 'demo-app',
    channel: 'stable',
    model: 'kws',
    release: '1.1.0',
    shareBps: 5000,
  });
  await new Promise((r) => setTimeout(r, 1100)); // the next telemetry window
  let insideOnControl = 0;
  for (let i = 0; i < devices.length; i++) {
    const inside = (await rolloutBucket(rollout.salt, devices[i]!)) < rollout.shareBps;
    // A fifth of the canary's devices have not updated: stuck on 1.0.0 behind their bucket.
    if (inside && i % 5 === 0) {
      insideOnControl += 1;
      await send(i, record('1.0.0', i, { failures: { E_HASH: 1 }, storagePersisted: false }));
    } else if (inside) {
      await send(
        i,
        record('1.1.0', i, {
          downloads: 1,
          resumed: 1,
          fallbacks: { 'no-webgpu': 1 },
          storagePersisted: true,
        }),
      );
    } else {
      await send(i, record('1.0.0', i, { storagePersisted: true }));
    }
  }
  expect(insideOnControl).toBeGreaterThan(0);

  const run = await edgeship(
    ['status', '--app', 'demo-app', '--channel', 'stable', '--stuck-grace', '0'],
    dir,
    {
      EDGESHIP_SERVER: t.server.url,
      EDGESHIP_TOKEN: t.server.tokens!.viewer,
    },
  );
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  const out = run.stdout;
  expect(out).toMatch(/update pipeline \(last hour\):/);
  expect(out).toMatch(
    /kws@1\.1\.0: \d+ downloads \(.* 100\.0% resumed\), failures 0\.0% \(none\), fallbacks no-webgpu \d+/,
  );
  expect(out).toMatch(/kws@1\.0\.0: 0 downloads .*failures 100\.0% \(E_HASH \d+\)/);
  expect(out).toMatch(/storage persisted \d+\.\d%/);
  expect(out).toContain(
    `kws (production 1.0.0, canary 1.1.0 at 50%): ${insideOnControl} of ${devices.length} devices`,
  );
  expect(out).toContain(`1.0.0 ×${insideOnControl}`);
  // The canary's installs per browser (canary/control), from the live verdict.
  expect(out).toMatch(/canary \S+ kws@1\.1\.0: healthy\n {2}browser: \w+ \d+\/\d+, \w+ \d+\/\d+/);

  await t.server.service.excludeSegments(
    { name: 'test' },
    rollout.id,
    [{ dimension: 'browser', value: 'firefox' }],
    'test',
  );
  const after = await edgeship(['status', '--app', 'demo-app', '--channel', 'stable'], dir, {
    EDGESHIP_SERVER: t.server.url,
    EDGESHIP_TOKEN: t.server.tokens!.viewer,
  });
  expect(after.stdout).toMatch(/kws@1\.1\.0 active 50% canary, excluding browser=firefox/);
}, 120_000);
