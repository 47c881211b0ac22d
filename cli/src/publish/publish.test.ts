import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  concatBytes,
  ManifestEnvelopeSchema,
  sha256Hex,
  verifyManifest,
  verifyReleaseDocument,
} from '@edgeship/protocol';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sileroPath } from '../../../test/support/models.ts';
import { startTestServer, type TestServer } from '../../../test/support/server.ts';
import { edgeship, publishSileroArgs, SILERO_CONTRACT, TEST_DATA } from '../../test-data/run-cli.ts';
import { readTestWav, SILERO_CARRY, sileroFrames } from '../../test-data/silero.ts';
import { GateError } from '../validate/gate-error.ts';
import { runSequence } from '../validate/run-sequence.ts';
import { type PublishOptions, publishModel } from './publish.ts';

let t: TestServer;
let dir: string;

beforeAll(async () => {
  t = await startTestServer();
  dir = await mkdtemp(join(tmpdir(), 'edgeship-publish-'));
  await writeFile(join(dir, 'publisher.key.json'), JSON.stringify(t.publisherKey));
  await writeFile(join(dir, 'CARD.md'), '# VAD\nSilero VAD v5, int8 weights.\n');
});

afterAll(async () => {
  await t?.stop();
});

/** The Silero VAD as vad@`version`, quantized to int8 on the test WAVs, straight to the test server. */
function publishSileroInt8(version: string, extra: Partial<PublishOptions> = {}) {
  return publishModel({
    model: sileroPath(),
    name: 'vad',
    version,
    quantize: 'int8',
    calibration: TEST_DATA,
    contract: SILERO_CONTRACT,
    publisherKey: t.publisherKey,
    server: t.server.url,
    token: t.server.tokens!.publisher,
    ...extra,
  });
}

describe('edgeship publish to a real update server', () => {
  it('publishes Silero int8 through the CLI, and a device verifies, downloads and runs it', async () => {
    const run = await edgeship(
      [
        ...publishSileroArgs('1.0.0', '--quantize', 'int8', '--calibration', TEST_DATA),
        '--model-card',
        'CARD.md',
        '--app',
        'demo',
        '--channel',
        'stable',
        '--rollout',
        '100',
        '--operator-token',
        t.server.tokens!.operator,
        '--json',
      ],
      dir,
      { EDGESHIP_SERVER: t.server.url, EDGESHIP_TOKEN: t.server.tokens!.publisher },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({
      ok: true,
      release: 'vad@1.0.0',
      rollout: { shareBps: 10_000, mode: 'canary' },
    });
    expect(result.upload.chunksUploaded).toBeGreaterThan(0);

    // What the registry kept: metrics, lineage and model card.
    const record = await t.viewer.getRelease('vad', '1.0.0');
    expect(record.metrics.meanAbsDiff).toBeLessThan(0.01);
    expect(record.metrics.sizeRatio).toBeLessThan(0.35);
    expect(record.lineage.datasetHash).toMatch(/^[0-9a-f]{64}$/);
    expect(record.lineage.sourceCommit).toMatch(/^[0-9a-f]{40}$/);
    expect(record.lineage.parameters).toMatchObject({ quantize: 'int8', calibrationFiles: 4 });
    expect(record.modelCard).toContain('Silero VAD v5');

    // A device: fetch the manifest, verify it against the pinned root, take the release.
    const text = await (await fetch(`${t.server.url}/v1/apps/demo/channels/stable/manifest`)).text();
    ManifestEnvelopeSchema.parse(JSON.parse(text));
    const { manifest, keySet } = await verifyManifest(text, {
      root: t.server.trustedRoot,
      app: 'demo',
      channel: 'stable',
      now: new Date(),
    });
    const entry = manifest.models.find((m) => m.name === 'vad')!;
    expect(entry.rollout).toMatchObject({ release: '1.0.0', shareBps: 10_000 });
    // The manifest names the release by its document's hash; the device fetches and checks it.
    const ref = entry.releases.find((r) => r.version === '1.0.0')!;
    const document = await fetch(`${t.server.url}/v1/releases/by-hash/${ref.sha256}`);
    const documentBytes = new Uint8Array(await document.arrayBuffer());
    const release = (await verifyReleaseDocument(documentBytes, { model: 'vad', ref }, keySet)).signed;
    expect(release.quantization).toEqual({ method: 'int8', perChannel: true });
    // The contract file's recurrent pair is signed, so devices carry Silero's state by themselves.
    expect(release.recurrent).toEqual([{ output: 'stateN', input: 'state' }]);
    // The profiled reference: one share per bin, summing to one.
    for (const feature of release.monitoring.features) {
      expect(feature.reference).toHaveLength(feature.binEdges.length + 1);
      expect(feature.reference.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    }
    expect(release.monitoring.features.map((f) => f.name)).toEqual(['frame_rms', 'speech_probability']);

    // Download chunk by chunk, checking each hash, then the whole file's.
    const file = release.files[0]!;
    const parts: Uint8Array[] = [];
    for (const chunk of file.chunks) {
      const part = new Uint8Array(
        await (await fetch(`${t.server.url}/v1/chunks/${chunk.sha256}`)).arrayBuffer(),
      );
      expect(await sha256Hex(part)).toBe(chunk.sha256);
      parts.push(part);
    }
    const bytes = concatBytes(parts);
    expect(bytes.length).toBe(file.size);
    expect(await sha256Hex(bytes)).toBe(file.sha256);

    // And it runs: speech is found in the speech clip and not in silence.
    const session = await ort.InferenceSession.create(bytes);
    const prob = async (clip: string) =>
      (await runSequence(session, sileroFrames(readTestWav(clip)), SILERO_CARRY)).outputs.map(
        (o) => (o.output!.data as Float32Array)[0]!,
      );
    expect(Math.max(...(await prob('speech-fox.wav')))).toBeGreaterThan(0.5);
    expect(Math.max(...(await prob('silence.wav')))).toBeLessThan(0.5);
    await session.release();
  });

  it('sends only the missing chunks when the same model is published again', async () => {
    const result = await publishSileroInt8('1.0.1');
    // The bytes are the same as 1.0.0's (quantization is deterministic): nothing to send.
    expect(result.upload).toEqual({ chunksUploaded: 0, bytesUploaded: 0 });
    expect((await t.viewer.getRelease('vad', '1.0.1')).version).toBe('1.0.1');
  });

  it('refuses a model whose outputs drift beyond the budget, before anything is sent', async () => {
    const before = (await t.viewer.listReleases('vad')).releases.length;
    const error = await publishSileroInt8('2.0.0', { budget: { maxMeanAbsDiff: 0.0001 } }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(GateError);
    expect((error as GateError).code).toBe('E_GATE');
    expect((error as GateError).message).toMatch(/^validation failed: maxMeanAbsDiff: /);
    expect((await t.viewer.listReleases('vad')).releases.length).toBe(before);

    // Through the CLI: exit 1, the gate report on stdout, one line on stderr.
    const run = await edgeship(
      [
        ...publishSileroArgs('2.0.0', '--quantize', 'int8', '--calibration', TEST_DATA),
        '--max-mad',
        '0.0001',
        '--server',
        t.server.url,
        '--token',
        t.server.tokens!.publisher,
        '--json',
      ],
      dir,
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^edgeship: E_GATE: validation failed: maxMeanAbsDiff: mean \|Δ\| [0-9.]+ > 0\.0001\n$/,
    );
    expect(JSON.parse(run.stdout).validation.passed).toBe(false);
  });
});
