import { describe, expect, it } from 'vitest';
import type { fleetReport } from '../../src/telemetry/fleet-report.ts';
import { EMPTY_FLEET, featuresOf, normalizeFleet, seriesBy, shadowSeries } from './fleet-data.ts';

type FleetBody = Awaited<ReturnType<typeof fleetReport>>;
type Version = FleetBody['versions'][number];

// Typed as the server's own report, so a change of its shape fails the type check here.
const version = (v: string, extra: Partial<Version> = {}): Version => ({
  model: 'demo',
  version: v,
  devices: 10,
  share: 0.5,
  inferences: 990,
  errors: 10,
  errorRate: 0.01,
  errorsByCode: { E_RUN: 10 },
  latencyMs: { p50: 4, p95: 9, p99: 15 },
  meanLoadMs: 120,
  backends: {},
  drift: { rms: { psi: 0.3, jsDistance: 0.1, ks: 0.2, drifted: true, samples: 500 } },
  ...extra,
});

const body: FleetBody = {
  app: 'demo-app',
  channel: 'stable',
  model: 'demo',
  since: '2026-01-01T00:00:00.000Z',
  until: '2026-01-01T00:20:00.000Z',
  stepSec: 600,
  devices: { demo: 20 },
  droppedOnDevices: 0,
  versions: [version('1.0.0'), version('1.1.0', { share: 0.5, errorRate: 0.05 })],
  shadow: [],
  stuck: [],
  windows: [
    {
      start: '2026-01-01T00:00:00.000Z',
      end: '2026-01-01T00:10:00.000Z',
      versions: [{ ...version('1.0.0', { share: 0.9 }), shadow: null }],
      shadow: [],
    },
    {
      start: '2026-01-01T00:10:00.000Z',
      end: '2026-01-01T00:20:00.000Z',
      versions: [
        { ...version('1.0.0', { share: 0.6, latencyMs: { p50: 5, p95: 10, p99: 20 } }), shadow: null },
        { ...version('1.1.0', { share: 0.4, drift: {} }), shadow: null },
      ],
      shadow: [
        {
          model: 'demo',
          candidate: '2.0.0',
          against: '1.0.0',
          devices: 3,
          compared: 100,
          agreements: 97,
          agreement: 0.97,
          absDiff: { p50: 0.01, p95: 0.02, p99: 0.03 },
          candidateLatencyMs: { p50: 6, p95: 11, p99: 12 },
        },
      ],
    },
  ],
  rollouts: [],
};

describe('fleet report → chart series', () => {
  it('reads each window per release, with gaps where a release reported nothing', () => {
    const data = normalizeFleet(body);
    const t0 = Date.parse('2026-01-01T00:00:00Z') / 1000;
    expect(seriesBy(data, ['1.0.0', '1.1.0'], (p) => p.share)).toEqual({
      times: [t0, t0 + 600],
      series: [
        { label: '1.0.0', values: [0.9, 0.6] },
        { label: '1.1.0', values: [null, 0.4] },
      ],
    });
    expect(seriesBy(data, ['1.0.0'], (p) => p.p99).series[0]!.values).toEqual([15, 20]);
    expect(seriesBy(data, ['1.0.0'], (p) => p.drift.rms ?? null).series[0]!.values).toEqual([0.3, 0.3]);
    expect(featuresOf(data, '1.0.0')).toEqual(['rms']);
    expect(featuresOf(data, '1.1.0')).toEqual([]);
    expect(shadowSeries(data)).toEqual({
      times: [t0 + 600],
      series: [{ label: '2.0.0 vs 1.0.0', values: [0.97] }],
    });
    expect(data.totals.map((p) => [p.release, p.errorRate])).toEqual([
      ['1.0.0', 0.01],
      ['1.1.0', 0.05],
    ]);
  });

  it('reads the live canary verdicts of running rollouts', () => {
    const withVerdict = {
      ...body,
      rollouts: [
        {
          id: 'r1',
          release: '1.1.0',
          mode: 'canary',
          canary: { decision: 'halt', reasons: ['p95 latency'] },
        },
        { id: 'r2', release: '1.2.0', mode: 'shadow', canary: null },
      ],
    };
    expect(normalizeFleet(withVerdict).live).toEqual([
      {
        rolloutId: 'r1',
        release: '1.1.0',
        decision: 'halt',
        reasons: ['p95 latency'],
        segments: [],
        excluded: [],
      },
    ]);
  });

  it('reads the segment split, excluded segments, the update pipeline and stuck devices', () => {
    const update = {
      downloads: 4,
      meanDownloadMs: 120,
      resumedShare: 0.25,
      failureRate: 0.2,
      failures: { E_HASH: 1 },
      fallbacks: { 'no-webgpu': 2 },
      persistedShare: 0.5,
    };
    const data = normalizeFleet({
      ...body,
      versions: [
        {
          ...version('1.1.0'),
          update,
        },
      ],
      stuck: [{ model: 'demo', judged: 10, stuck: 3, share: 0.3, graceSec: 3600, byVersion: { '1.0.0': 3 } }],
      rollouts: [
        {
          id: 'r1',
          release: '1.1.0',
          excludedSegments: [{ dimension: 'browser', value: 'firefox' }],
          canary: {
            decision: 'healthy',
            reasons: [],
            evidence: {
              segments: {
                browser: { chrome: { canary: 30, control: 40 }, firefox: { canary: 20, control: 25 } },
                os: { linux: { canary: 50, control: 65 } },
              },
            },
          },
        },
      ],
    });
    expect(data.live[0]).toMatchObject({
      excluded: ['browser=firefox'],
      segments: [
        {
          dimension: 'browser',
          values: [
            { value: 'chrome', canary: 30, control: 40 },
            { value: 'firefox', canary: 20, control: 25 },
          ],
        },
      ],
    });
    expect(data.pipeline).toEqual([{ release: '1.1.0', ...update }]);
    expect(data.stuck).toEqual([
      { model: 'demo', judged: 10, stuck: 3, share: 0.3, graceSec: 3600, byVersion: { '1.0.0': 3 } },
    ]);
  });

  it('reads anything else as no data, never as an exception', () => {
    for (const junk of [
      null,
      42,
      'x',
      [],
      { windows: 'no' },
      { windows: [{ start: 'never', versions: [] }] },
    ]) {
      expect(normalizeFleet(junk)).toEqual(EMPTY_FLEET);
    }
  });
});
