import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededBytes } from '@edgeship/protocol';
import { createToken } from '@edgeship/update-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sileroPath } from '../../../test/support/models.ts';
import { publish, startTestServer, type TestServer } from '../../../test/support/server.ts';
import { edgeship, publishSileroArgs, SILERO_CONTRACT } from '../../test-data/run-cli.ts';

let t: TestServer;
let dir: string;
let env: { operator: Record<string, string>; viewer: Record<string, string> };

beforeAll(async () => {
  t = await startTestServer();
  dir = await mkdtemp(join(tmpdir(), 'edgeship-commands-'));
  await writeFile(join(dir, 'publisher.key.json'), JSON.stringify(t.publisherKey));
  expect((await edgeship(['keygen', '--dir', 'other-keys', '--json'], dir)).code).toBe(0);
  await publish(t, seededBytes(100_000, 1), { model: 'kws', version: '1.0.0' });
  await publish(t, seededBytes(100_000, 2), { model: 'kws', version: '1.1.0' });
  const server = t.server.url;
  env = {
    operator: { EDGESHIP_SERVER: server, EDGESHIP_TOKEN: t.server.tokens!.operator },
    viewer: { EDGESHIP_SERVER: server, EDGESHIP_TOKEN: t.server.tokens!.viewer },
  };
});

afterAll(async () => {
  await t?.stop();
});

const channel = ['--app', 'demo', '--channel', 'beta'];

describe('edgeship rollout and status against a real server', () => {
  it('promotes, stages, widens, halts, promotes and rolls back, as status shows', async () => {
    const ok = async (args: string[], who: 'operator' | 'viewer' = 'operator') => {
      const run = await edgeship([...args, '--json'], dir, env[who]);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      return JSON.parse(run.stdout);
    };
    expect(await ok(['rollout', 'promote', 'kws', '--release', '1.0.0', ...channel])).toEqual({
      production: '1.0.0',
    });
    const started = await ok(['rollout', 'start', 'kws', '1.1.0', '10', ...channel]);
    expect(started).toMatchObject({ release: '1.1.0', shareBps: 1000, control: '1.0.0', state: 'active' });
    expect(await ok(['rollout', 'set', 'kws', '50', ...channel])).toMatchObject({
      id: started.id,
      shareBps: 5000,
    });

    const status = await ok(['status', '--app', 'demo', '--channel', 'beta', '--model', 'kws'], 'viewer');
    expect(status.releases.map((r: { version: string }) => r.version).sort()).toEqual(['1.0.0', '1.1.0']);
    expect(status.rollouts).toHaveLength(1);
    expect(status.channels[0].models[0]).toMatchObject({ production: '1.0.0', rollout: { shareBps: 5000 } });
    // Fleet health comes from the server's telemetry report: no device has reported yet.
    expect(status.fleetHealth).toEqual([
      expect.objectContaining({ app: 'demo', channel: 'beta', versions: [] }),
    ]);

    expect(await ok(['rollout', 'halt', 'kws', '--reason', 'error rate', ...channel])).toMatchObject({
      state: 'halted',
      reason: 'error rate',
    });
    await ok(['rollout', 'start', 'kws', '1.1.0', '20', ...channel]);
    expect(await ok(['rollout', 'promote', 'kws', ...channel])).toMatchObject({ state: 'promoted' });
    expect(await ok(['rollout', 'rollback', 'kws', '--reason', 'regression', ...channel])).toEqual({
      production: '1.0.0',
    });

    // Human output: one line per item; no device has reported, and it says so.
    const human = await edgeship(['status'], dir, env.viewer);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/kws@1\.1\.0 onnx/);
    expect(human.stdout).toMatch(/demo\/beta manifest v\d+: kws production 1\.0\.0/);
    expect(human.stdout).toMatch(/fleet health \(last hour\):\n {2}demo\/beta: no telemetry yet/);
  }, 180_000); // a dozen CLI processes, one after another: 30 s is not enough on a loaded machine
});

describe('bad input exits non-zero with a one-line reason', () => {
  const publishArgs = (...extra: string[]) => publishSileroArgs('1.0.0', ...extra);
  const server = () => ['--server', t.server.url];
  const publisherToken = () => ['--token', t.server.tokens!.publisher];

  it.each<[string, () => string[] | Promise<string[]>, 'operator' | 'viewer' | null, number, string]>([
    [
      'publish: a missing model file',
      () =>
        [...publishArgs(), ...server(), ...publisherToken()].map((a) =>
          a === sileroPath() ? 'nope.onnx' : a,
        ),
      null,
      2,
      'E_CLI',
    ],
    [
      'publish: a missing calibration directory',
      () => [
        ...publishArgs('--quantize', 'int8', '--calibration', 'nope/'),
        ...server(),
        ...publisherToken(),
      ],
      null,
      2,
      'E_CLI',
    ],
    [
      'publish: quantizing without calibration',
      () => [...publishArgs('--quantize', 'int8'), ...server(), ...publisherToken()],
      null,
      2,
      'E_CLI',
    ],
    [
      'publish: an unknown quantization',
      () => [...publishArgs('--quantize', 'int4'), ...server(), ...publisherToken()],
      null,
      2,
      'E_CLI',
    ],
    [
      'publish: a file that is not a key',
      () => [...publishArgs('--publisher-key', SILERO_CONTRACT), ...server(), ...publisherToken()],
      null,
      2,
      'E_CLI',
    ],
    [
      'publish: a key the server does not trust',
      () => [
        ...publishArgs('--publisher-key', 'other-keys/publisher.key.json'),
        ...server(),
        ...publisherToken(),
      ],
      null,
      1,
      'E_UNKNOWN_KEY',
    ],
    [
      'publish: an unreachable server',
      () => [...publishArgs(), '--server', 'http://127.0.0.1:9', ...publisherToken()],
      null,
      3,
      'E_NETWORK',
    ],
    [
      'publish: an unknown token',
      () => [...publishArgs(), ...server(), '--token', 'es_pub_nope'],
      null,
      4,
      'E_UNAUTHENTICATED',
    ],
    [
      'publish: an expired token',
      async () => {
        const expired = await createToken(t.server.registry, 'expired', 'publisher', {
          expiresAt: new Date(Date.now() - 60_000),
        });
        return [...publishArgs(), ...server(), '--token', expired];
      },
      null,
      4,
      'E_UNAUTHENTICATED',
    ],
    [
      'publish: an operator token',
      () => [...publishArgs(), ...server(), '--token', t.server.tokens!.operator],
      null,
      4,
      'E_FORBIDDEN',
    ],
    ['publish: no server', () => publishArgs(), null, 2, 'E_CLI'],
    [
      'publish: --rollout without a channel',
      () => [...publishArgs('--rollout', '5'), ...server(), ...publisherToken()],
      null,
      2,
      'E_CLI',
    ],
    [
      'rollout set: a share above 100%',
      () => ['rollout', 'set', 'kws', '150', ...channel],
      'operator',
      2,
      'E_CLI',
    ],
    [
      'rollout set: no running rollout',
      () => ['rollout', 'set', 'kws', '5', '--app', 'demo', '--channel', 'none'],
      'operator',
      1,
      'E_NOT_FOUND',
    ],
    [
      'rollout start: a viewer token',
      () => ['rollout', 'start', 'kws', '1.1.0', '5', ...channel],
      'viewer',
      4,
      'E_FORBIDDEN',
    ],
    [
      'rollout start: an unknown release',
      () => ['rollout', 'start', 'kws', '9.9.9', '5', ...channel],
      'operator',
      1,
      'E_NOT_FOUND',
    ],
    [
      'status: an unreachable server',
      () => ['status', '--server', 'http://127.0.0.1:9', '--token', 'x'],
      null,
      3,
      'E_NETWORK',
    ],
    [
      'status: an unknown token',
      () => ['status', ...server(), '--token', 'es_vie_nope'],
      null,
      4,
      'E_UNAUTHENTICATED',
    ],
    ['status: no token', () => ['status', ...server()], null, 2, 'E_AUTH'],
  ])('%s', async (_, args, who, exitCode, code) => {
    const run = await edgeship(await args(), dir, who ? env[who] : {});
    expect(run.code).toBe(exitCode);
    expect(run.stderr).toMatch(new RegExp(`^edgeship: ${code}: [^\\n]+\\n$`));
  });

  it('commander usage errors: a missing required flag', async () => {
    const run = await edgeship(['rollout', 'halt', 'kws', ...channel], dir, env.operator);
    expect(run.code).toBe(2);
    expect(run.stderr.split('\n')[0]).toMatch(/^error: required option '--reason <text>' not specified$/);
  });
});
