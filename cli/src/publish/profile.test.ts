import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readSileroV5 } from '../../test-data/silero.ts';
import { exitCodeFor } from '../commands/output.ts';
import { onnxUnderTest } from '../validate/release-runner.ts';
import { readCalibration } from './calibration.ts';
import { ContractSchema } from './contract.ts';
import { profileMonitoring, quantileEdges } from './profile.ts';

const TEST_DATA = fileURLToPath(new URL('../../test-data/', import.meta.url));
const contract = ContractSchema.parse(
  JSON.parse(
    await (await import('node:fs/promises')).readFile(join(TEST_DATA, 'contracts/silero.json'), 'utf8'),
  ),
);

describe('quantileEdges', () => {
  it('splits data into equal shares and collapses repeated values', () => {
    expect(quantileEdges([1, 2, 3, 4, 5, 6, 7, 8], 4)).toEqual([3, 5, 7]);
    expect(quantileEdges([0, 0, 0, 0, 0, 0, 1, 2], 4)).toEqual([0, 1]);
    expect(quantileEdges([5, 5, 5], 10)).toEqual([5]);
  });
});

describe('calibration and profile on Silero VAD', () => {
  it('reads the test WAVs as 512-sample frames and profiles both monitored features', async () => {
    const calibration = await readCalibration(TEST_DATA, contract);
    expect(calibration.files).toEqual(['noise.wav', 'silence.wav', 'speech-fox.wav', 'speech-in-noise.wav']);
    expect(calibration.datasetHash).toMatch(/^[0-9a-f]{64}$/);
    const first = calibration.sequences[0]![0]!;
    expect(first.input!.dims).toEqual([1, 512]);
    expect(Array.from(first.sr!.data as BigInt64Array)).toEqual([16000n]);

    const { monitoring, features } = await profileMonitoring(
      onnxUnderTest(readSileroV5(), contract),
      calibration.sequences,
      contract,
    );
    const [rms, speech] = monitoring.features;
    expect(rms!.binEdges).toEqual([0.001, 0.003, 0.01, 0.03, 0.1, 0.3]); // declared edges kept
    expect(speech!.binEdges.length).toBeGreaterThanOrEqual(1); // measured quantile edges
    expect(speech!.binEdges.length).toBeLessThanOrEqual(4);
    for (const f of monitoring.features) expect(f.reference.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    // Silence is all zeros: its frames land in the lowest RMS bin.
    expect(rms!.reference[0]).toBeGreaterThan(0.1);
    expect(features.every((f) => f.observations === calibration.frames)).toBe(true);
    expect(monitoring.decision).toEqual({ tensor: 'output', threshold: 0.5 });
  });

  it('reads .json frames and names what is wrong with a bad one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edgeship-cal-'));
    const frame = { input: { dims: [1, 512], data: new Array(512).fill(0.01) } };
    await writeFile(join(dir, 'a.json'), JSON.stringify({ frames: [frame, frame] }));
    const calibration = await readCalibration(dir, contract);
    expect(calibration.frames).toBe(2);
    expect(calibration.sequences[0]![1]!.state!.dims).toEqual([2, 1, 128]);

    await writeFile(join(dir, 'b.json'), JSON.stringify({ frames: [{ nope: { dims: [1], data: [1] } }] }));
    await expect(readCalibration(dir, contract)).rejects.toThrow(
      /b\.json: frame 0 names unknown input "nope"/,
    );
    await expect(readCalibration(join(dir, 'missing'), contract).catch(exitCodeFor)).resolves.toMatchObject({
      exitCode: 2,
    });
  });
});
