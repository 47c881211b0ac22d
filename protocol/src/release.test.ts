import { describe, expect, it } from 'vitest';
import { type Release, ReleaseSchema, recurrentIssues } from './release.ts';

const SHA = 'a'.repeat(64);

/** Silero VAD's contract: its state output feeds its state input at the next frame. */
function sileroRelease(recurrent?: Release['recurrent']): Release {
  return {
    type: 'edgeship/release',
    model: 'vad',
    version: '1.0.0',
    format: 'onnx',
    files: [{ path: 'model.onnx', size: 10, sha256: SHA, chunks: [{ sha256: SHA, size: 10 }] }],
    quantization: { method: 'none' },
    inputs: [
      { name: 'input', dtype: 'float32', shape: [1, 512] },
      { name: 'state', dtype: 'float32', shape: [2, 1, 128] },
      { name: 'sr', dtype: 'int64', shape: [] },
    ],
    outputs: [
      { name: 'output', dtype: 'float32', shape: [1, 1] },
      { name: 'stateN', dtype: 'float32', shape: [2, 1, 128] },
    ],
    preprocessing: [],
    postprocessing: [],
    monitoring: { features: [] },
    ...(recurrent ? { recurrent } : {}),
    minRuntimeVersion: '0.1.0',
    createdAt: '2026-12-01T00:00:00.000Z',
  };
}

function issuesOf(value: unknown): string[] {
  const parsed = ReleaseSchema.safeParse(value);
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('recurrent pairs in the signed contract', () => {
  it('accepts a release without pairs and one whose pair names an output and an input', () => {
    expect(issuesOf(sileroRelease())).toEqual([]);
    const parsed = ReleaseSchema.parse(sileroRelease([{ output: 'stateN', input: 'state' }]));
    expect(parsed.recurrent).toEqual([{ output: 'stateN', input: 'state' }]);
  });

  it('refuses a pair whose names are not in the contract, or the wrong way round', () => {
    expect(issuesOf(sileroRelease([{ output: 'hN', input: 'state' }]))).toEqual([
      'recurrent.0.output: "hN" is not one of the outputs',
    ]);
    expect(issuesOf(sileroRelease([{ output: 'stateN', input: 'h' }]))).toEqual([
      'recurrent.0.input: "h" is not one of the inputs',
    ]);
    expect(issuesOf(sileroRelease([{ output: 'state', input: 'stateN' }]))).toEqual([
      'recurrent.0.output: "state" is not one of the outputs',
      'recurrent.0.input: "stateN" is not one of the inputs',
    ]);
  });

  it('refuses an output or an input in two pairs, extra fields and empty names', () => {
    expect(
      issuesOf(
        sileroRelease([
          { output: 'stateN', input: 'state' },
          { output: 'stateN', input: 'input' },
        ]),
      ),
    ).toEqual(['recurrent.1.output: "stateN" is in two recurrent pairs']);
    expect(
      recurrentIssues({
        inputs: [{ name: 'h' }],
        outputs: [{ name: 'a' }, { name: 'b' }],
        recurrent: [
          { output: 'a', input: 'h' },
          { output: 'b', input: 'h' },
        ],
      }),
    ).toEqual([{ path: ['recurrent', 1, 'input'], message: '"h" is in two recurrent pairs' }]);
    const extra = { ...sileroRelease(), recurrent: [{ output: 'stateN', input: 'state', initial: 0 }] };
    expect(issuesOf(extra)).toHaveLength(1);
    expect(issuesOf(sileroRelease([{ output: '', input: 'state' }])).length).toBeGreaterThan(0);
  });
});

describe('the gates a release records', () => {
  const gates = (results: number, against?: unknown) => ({
    dataset: SHA,
    frames: 40,
    results: Array.from({ length: results }, (_, i) => ({ name: `gate-${i}`, value: i / 100, limit: null })),
    ...(against === undefined ? {} : { against }),
  });

  it('accepts a bounded record, with or without the production release it compared with', () => {
    expect(issuesOf({ ...sileroRelease(), gates: gates(3) })).toEqual([]);
    const against = { app: 'demo', channel: 'stable', version: null };
    expect(ReleaseSchema.parse({ ...sileroRelease(), gates: gates(1, against) }).gates?.against).toEqual(
      against,
    );
  });

  it('refuses more than 32 gates, non-finite numbers, a bad hash and extra fields', () => {
    expect(issuesOf({ ...sileroRelease(), gates: gates(33) })).toEqual(['gates.results: Invalid input']);
    expect(issuesOf({ ...sileroRelease(), gates: gates(32) })).toEqual([]);
    const infinite = gates(1);
    infinite.results[0]!.value = Number.POSITIVE_INFINITY;
    expect(issuesOf({ ...sileroRelease(), gates: infinite })).toHaveLength(1);
    expect(issuesOf({ ...sileroRelease(), gates: { ...gates(1), dataset: 'x' } })).toHaveLength(1);
    expect(issuesOf({ ...sileroRelease(), gates: { ...gates(1), passed: true } })).toHaveLength(1);
    expect(
      issuesOf({ ...sileroRelease(), gates: gates(1, { app: 'demo', channel: 'stable' }) }),
    ).toHaveLength(1);
  });
});
