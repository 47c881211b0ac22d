import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readCalibration } from './calibration.ts';
import { type Contract, ContractSchema } from './contract.ts';

const CONTRACT = join(import.meta.dirname, '../../test-data/contracts/silero.json');
const dirs: string[] = [];

async function readContract(path: string): Promise<Contract> {
  return ContractSchema.parse(JSON.parse(await readFile(path, 'utf8')));
}

afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** A calibration directory of .json files, each `count` silent frames, labelled or not. */
async function calibrationDir(files: Array<{ count: number; labels?: number[] }>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeship-labels-'));
  dirs.push(dir);
  for (const [i, file] of files.entries()) {
    const frames = Array.from({ length: file.count }, () => ({
      input: { dims: [1, 512], data: new Array(512).fill(0) },
    }));
    await writeFile(join(dir, `clip-${i}.json`), JSON.stringify({ frames, labels: file.labels }));
  }
  return dir;
}

describe('labelled calibration data', () => {
  it('reads one label per frame, in sequence order, across files', async () => {
    const contract = await readContract(CONTRACT);
    const dir = await calibrationDir([
      { count: 2, labels: [0, 1] },
      { count: 3, labels: [1, 1, 0] },
    ]);
    const calibration = await readCalibration(dir, contract);
    expect(calibration.frames).toBe(5);
    expect(calibration.labels).toEqual([0, 1, 1, 1, 0]);
  });

  it('has no labels when no file carries them', async () => {
    const calibration = await readCalibration(
      await calibrationDir([{ count: 2 }]),
      await readContract(CONTRACT),
    );
    expect(calibration.labels).toBeNull();
  });

  it('refuses a label count that is not the frame count, and half-labelled data', async () => {
    const contract = await readContract(CONTRACT);
    await expect(
      readCalibration(await calibrationDir([{ count: 2, labels: [1] }]), contract),
    ).rejects.toThrow(/labels must have one entry per frame/);
    await expect(
      readCalibration(await calibrationDir([{ count: 1, labels: [1] }, { count: 1 }]), contract),
    ).rejects.toThrow(/1 of 2 calibration files carry labels/);
  });
});
