// The dashboard's fleet view in a real Chromium (playwright-core) against a real update server that
// received real telemetry batches through POST /v1/telemetry during a canary rollout: the numbers
// it shows are the ones the devices sent, and the charts are actually drawn.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bucketOf,
  bucketUpperBound,
  type Histogram,
  histogramQuantile,
  measureDrift,
  mergeHistograms,
  seededBytes,
  type TelemetryRecord,
} from '@edgeship/protocol';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../test/support/server.ts';
import { chromiumArgs } from '../../vitest.config.ts';
import { mountDashboard } from '../src/routes/dashboard.ts';
import { makeBatch, makeRecord, postBatch, uniformMonitoring } from '../src/telemetry/testing.ts';
import { ensureDashboardBuilt } from './build.ts';

const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const artifacts = join(repo, 'test-artifacts');
const APP = 'demo-app';
const CHANNEL = 'stable';
const CONTROL = '1.0.0';
const CANDIDATE = '1.1.0';

/**
 * n latencies around a median, deterministic so the percentiles are known: 90% spread evenly over
 * ±20%, the slowest 10% a tail up to twice the median (so p50, p95 and p99 fall in different buckets).
 */
function latencies(medianMs: number, n: number, phase: number): number[] {
  return Array.from({ length: n }, (_, i) => {
    const u = ((i * 37 + phase * 11) % n) / (n - 1);
    return medianMs * (0.8 + 0.4 * u + 8 * Math.max(0, u - 0.9));
  });
}

/** What a device ran in its batch window, per release. */
interface DeviceReport {
  deviceId: string;
  version: string;
  latenciesMs: number[];
  errors: number;
  /** Counts per bin of the monitored feature `energy` (ten bins, see uniformMonitoring). */
  energy: number[];
}

// Four devices on the control (~10 ms, no errors, inputs like the reference) and two on the
// candidate (~30 ms, 10% failed, inputs skewed towards low energy). Far fewer installs and
// networks than the canary policy needs, so the analysis says "insufficient-data" and the rollout stays
// active while the page is looked at (a halt would reorder what the view shows).
const UNIFORM = [10, 10, 10, 10, 10, 10, 10, 10, 10, 10];
const SKEWED = [27, 18, 13, 9, 7, 5, 4, 3, 2, 2];
const reports: DeviceReport[] = [
  ...[0, 1, 2, 3].map((d) => ({
    deviceId: `control-device-${d}`,
    version: CONTROL,
    latenciesMs: latencies(10, 100, d),
    errors: 0,
    energy: UNIFORM,
  })),
  ...[0, 1].map((d) => ({
    deviceId: `candidate-device-${d}`,
    version: CANDIDATE,
    latenciesMs: latencies(30, 90, d),
    errors: 10,
    energy: SKEWED,
  })),
];

/** The record a device sends for one release (latency histogram built with the protocol's recordValue). */
function recordOf(r: DeviceReport): TelemetryRecord {
  // Five 0/1 outcomes per device: two accepted on the control, three on the candidate.
  const accepted = r.version === CONTROL ? 2 : 3;
  return {
    ...makeRecord({
      model: 'demo',
      version: r.version,
      latenciesMs: r.latenciesMs,
      errors: r.errors > 0 ? { E_HEALTH_CHECK: r.errors } : {},
      energy: r.energy,
    }),
    quality: { outcomes: [{ name: 'accepted', count: 5, sum: accepted, sumSq: accepted }] },
  };
}

/** Expected numbers for one release, computed from what was sent (not from the server's answer). */
function expected(version: string) {
  const sent = reports.filter((r) => r.version === version);
  const samples = sent.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
  const errors = sent.reduce((n, r) => n + r.errors, 0);
  const energy = sent.reduce((sum, r) => sum.map((n, i) => n + r.energy[i]!), new Array(10).fill(0));
  const rawQuantile = (q: number) => samples[Math.ceil(q * samples.length) - 1]!;
  return {
    devices: sent.length,
    inferences: samples.length,
    errorRate: errors / (samples.length + errors),
    rawP95: rawQuantile(0.95),
    /** The same samples through the latency histogram: a percentile reads as its bucket's upper bound. */
    histogram: mergeHistograms(...sent.map((r) => recordOf(r).latencyMs)) as Histogram,
    psi: measureDrift(uniformMonitoring().features[0]!.reference, energy).psi,
  };
}

let t: TestServer;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  const distDir = await ensureDashboardBuilt();
  t = await startTestServer({ mount: (app) => mountDashboard(app, { distDir }) });
  // Both releases monitor the `energy` feature against a uniform reference, so drift is measured.
  await publish(t, seededBytes(4096, 11), { version: CONTROL, monitoring: uniformMonitoring() });
  await publish(t, seededBytes(4096, 12), { version: CANDIDATE, monitoring: uniformMonitoring() });
  await t.operator.promoteRelease(APP, CHANNEL, 'demo', CONTROL);
  await t.operator.createRollout({
    app: APP,
    channel: CHANNEL,
    model: 'demo',
    release: CANDIDATE,
    shareBps: 2500,
    mode: 'canary',
  });
  // The server files telemetry by its receive time in 60 s windows: send all batches in one of
  // them (what the view shows in the first minute of a rollout: one point per series).
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 50_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 100));
  for (const r of reports) {
    const answer = await postBatch(t.server.url, makeBatch(r.deviceId, [recordOf(r)]));
    expect(answer).toMatchObject({ status: 202, body: { status: 'accepted' } });
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: chromiumArgs,
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  await mkdir(artifacts, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

const releaseRow = (version: string) => `[data-testid="fleet-release-row"][data-release="${version}"]`;
const cell = (version: string, testid: string) =>
  page.textContent(`${releaseRow(version)} [data-testid="${testid}"]`);

/** "p50 / p95 / p99 ms" as shown in the summary. */
async function latencyCell(version: string): Promise<{ p50: number; p95: number; p99: number }> {
  const text = (await cell(version, 'fleet-latency')) ?? '';
  const match = /^([\d.]+) \/ ([\d.]+) \/ ([\d.]+) ms$/.exec(text);
  expect(match, `latency cell "${text}"`).not.toBeNull();
  return { p50: Number(match![1]), p95: Number(match![2]), p99: Number(match![3]) };
}

interface SeriesInk {
  /** Pixels in the series' stroke colour. */
  pixels: number;
  /** Their mean position, as a fraction of the plot area (0,0 top left; 1,1 bottom right). */
  x: number;
  y: number;
}

interface Ink {
  width: number;
  height: number;
  /** Pixels that are not transparent (axes, grid, labels and series). */
  painted: number;
  /** Per legend entry, in legend order. */
  bySeries: Record<string, SeriesInk>;
}

/**
 * Reads a chart's canvas back: its size, how much of it is painted, and where the pixels of each
 * series' colour are (the colour taken from the legend marker uPlot draws beside the name).
 */
function inkOf(testid: string): Promise<Ink> {
  return page.$eval(`[data-testid="${testid}"]`, (figure) => {
    const canvas = figure.querySelector('canvas')!;
    const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
    // uPlot lays its cursor overlay exactly over the plot area, in CSS pixels of the canvas.
    const over = figure.querySelector<HTMLElement>('.u-over')!;
    const scale = canvas.width / canvas.getBoundingClientRect().width;
    const plot = {
      left: over.offsetLeft * scale,
      top: over.offsetTop * scale,
      width: over.offsetWidth * scale,
      height: over.offsetHeight * scale,
    };
    const colours: Array<[string, number[]]> = [];
    for (const row of figure.querySelectorAll('.u-legend .u-series')) {
      const marker = row.querySelector<HTMLElement>('.u-marker');
      const label = row.querySelector('.u-label')?.textContent ?? '';
      // The x (time) row has a marker with no colour of its own.
      const rgb = marker?.style.borderTopColor
        ? /rgb\((\d+), (\d+), (\d+)\)/.exec(getComputedStyle(marker).borderTopColor)
        : null;
      if (label && rgb) colours.push([label, rgb.slice(1, 4).map(Number)]);
    }
    const sums = colours.map(() => ({ pixels: 0, x: 0, y: 0 }));
    let painted = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] === 0) continue;
      painted += 1;
      colours.forEach(([, [r, g, b]], k) => {
        const distance = Math.abs(data[i]! - r!) + Math.abs(data[i + 1]! - g!) + Math.abs(data[i + 2]! - b!);
        if (data[i + 3]! > 200 && distance < 40) {
          sums[k]!.pixels += 1;
          sums[k]!.x += (i / 4) % canvas.width;
          sums[k]!.y += Math.floor(i / 4 / canvas.width);
        }
      });
    }
    const bySeries = Object.fromEntries(
      colours.map(([label], k) => {
        const { pixels, x, y } = sums[k]!;
        return [
          label,
          {
            pixels,
            x: pixels ? (x / pixels - plot.left) / plot.width : Number.NaN,
            y: pixels ? (y / pixels - plot.top) / plot.height : Number.NaN,
          },
        ];
      }),
    );
    return { width: canvas.width, height: canvas.height, painted, bySeries };
  });
}

describe('fleet view with real telemetry in Chromium', () => {
  it('shows the versions in use, latency, errors and drift the devices sent, and draws the charts', async () => {
    await page.goto(
      `${t.server.url}/dashboard/?token=${encodeURIComponent(t.server.tokens!.viewer)}#/${APP}/${CHANNEL}`,
    );
    await page.waitForSelector('main[data-loaded="true"]');
    await expect(page.getAttribute('[data-testid="whoami"]', 'data-role')).resolves.toBe('viewer');
    await page.waitForSelector('[data-testid="fleet-charts"]:not([data-state="loading"])');
    await expect(page.getAttribute('[data-testid="fleet-charts"]', 'data-state')).resolves.toBe('data');
    await expect(page.isVisible('[data-testid="fleet-error"]')).resolves.toBe(false);
    // The running rollout's release is charted first.
    await expect(page.inputValue('[data-testid="fleet-release"]')).resolves.toBe(CANDIDATE);

    // Summary over the whole period, one row per release, against what the devices sent.
    const control = expected(CONTROL);
    const candidate = expected(CANDIDATE);
    const total = control.devices + candidate.devices;
    for (const [version, want] of [
      [CONTROL, control],
      [CANDIDATE, candidate],
    ] as const) {
      await expect(cell(version, 'fleet-devices')).resolves.toBe(String(want.devices));
      await expect(cell(version, 'fleet-share')).resolves.toBe(
        `${((100 * want.devices) / total).toFixed(2)}%`,
      );
      await expect(cell(version, 'fleet-inferences')).resolves.toBe(String(want.inferences));
      await expect(cell(version, 'fleet-error-rate')).resolves.toBe(`${(100 * want.errorRate).toFixed(2)}%`);
      // A percentile is its histogram bucket's upper bound: at or above the true value, below 1.1×.
      const shown = await latencyCell(version);
      expect(shown.p95).toBeGreaterThanOrEqual(Number(want.rawP95.toFixed(2)));
      expect(shown.p95).toBeLessThan(want.rawP95 * 1.1);
      expect(shown.p95).toBe(Number(bucketUpperBound(bucketOf(want.rawP95)).toFixed(2)));
      expect(shown.p95).toBe(Number(histogramQuantile(want.histogram, 0.95)!.toFixed(2)));
      expect(shown.p50).toBeLessThanOrEqual(shown.p95);
      expect(shown.p95).toBeLessThanOrEqual(shown.p99);
    }
    expect(candidate.errorRate).toBeCloseTo(0.1, 10);
    expect((await latencyCell(CANDIDATE)).p95).toBeGreaterThan(2 * (await latencyCell(CONTROL)).p95);
    // Skewed inputs drift on the candidate only; the PSI shown is the one the sent counts give.
    expect(candidate.psi).toBeGreaterThan(0.2);
    await expect(cell(CANDIDATE, 'fleet-drifted')).resolves.toBe(`energy (PSI ${candidate.psi.toFixed(3)})`);
    await expect(cell(CONTROL, 'fleet-drifted')).resolves.toBe('none');
    // Outcome rates per release from the app's outcomes; no feedback, so no accuracy.
    await expect(cell(CONTROL, 'fleet-outcomes')).resolves.toBe('accepted 0.400 (20)');
    await expect(cell(CANDIDATE, 'fleet-outcomes')).resolves.toBe('accepted 0.600 (10)');
    await expect(cell(CONTROL, 'fleet-accuracy')).resolves.toBe('—');

    // The canary analysis' live verdict: nothing counts yet (these devices were not seen before the
    // rollout started, and all share one network; see canary/evidence.ts).
    await expect(page.getAttribute('[data-testid="live-verdict"]', 'data-decision')).resolves.toBe(
      'insufficient-data',
    );
    await expect(page.textContent('[data-testid="live-verdict"]')).resolves.toContain(
      `${CANDIDATE}: the canary has evidence from 0 installs on 0 networks`,
    );

    // The update pipeline per release, and stuck devices per model (none judged within the grace).
    expect(
      await page.$$eval('[data-testid="pipeline-row"]', (rows) =>
        rows.map((r) => r.getAttribute('data-release')).sort(),
      ),
    ).toEqual([CONTROL, CANDIDATE].sort());
    await expect(page.textContent('[data-testid="stuck-devices"]')).resolves.toMatch(/0 of \d+ devices/);

    // Every chart has data and uPlot drew it on a canvas.
    const charts = ['chart-share', 'chart-latency', 'chart-errors', 'chart-drift'];
    for (const testid of charts) {
      await expect(page.getAttribute(`[data-testid="${testid}"]`, 'data-state')).resolves.toBe('drawn');
      await expect(page.getAttribute(`[data-testid="${testid}"]`, 'data-points')).resolves.toBe('1');
      await page.waitForSelector(`[data-testid="${testid}"] canvas`);
    }
    await expect(page.textContent('[data-testid="chart-latency"] figcaption')).resolves.toBe(
      `Latency of ${CANDIDATE}`,
    );
    // Saved before the pixel checks, so a failing run leaves the picture to look at.
    const fleet = (await page.$('[data-testid="fleet"]'))!;
    await fleet.scrollIntoViewIfNeeded();
    await fleet.screenshot({ path: join(artifacts, 'fleet-charts.png') });
    const ink = Object.fromEntries(await Promise.all(charts.map(async (c) => [c, await inkOf(c)] as const)));
    for (const [testid, { width, height, painted, bySeries }] of Object.entries(ink)) {
      expect(width, testid).toBeGreaterThan(0);
      expect(height, testid).toBeGreaterThan(0);
      expect(painted, testid).toBeGreaterThan(0);
      for (const [series, at] of Object.entries(bySeries)) {
        // Each series is on the canvas in its own colour: a dot's ring is a dozen pixels or so.
        expect(at.pixels, `${testid} ${series}`).toBeGreaterThan(8);
        // One window: its dots sit inside the plot, not on its left edge.
        if (series !== 'threshold') expect(at.x, `${testid} ${series}`).toBeGreaterThan(0.2);
        if (series !== 'threshold') expect(at.x, `${testid} ${series}`).toBeLessThan(0.8);
      }
    }
    const y = (testid: string, series: string) => ink[testid]!.bySeries[series]!.y;
    expect(Object.keys(ink['chart-share']!.bySeries)).toEqual([CANDIDATE, CONTROL]);
    expect(y('chart-share', CONTROL)).toBeLessThan(y('chart-share', CANDIDATE)); // 67% above 33%
    expect(Object.keys(ink['chart-errors']!.bySeries)).toEqual([CANDIDATE, CONTROL]);
    expect(y('chart-errors', CANDIDATE)).toBeLessThan(y('chart-errors', CONTROL)); // 10% above 0%
    expect(y('chart-errors', CONTROL)).toBeGreaterThan(0.95); // 0% on the x axis
    expect(Object.keys(ink['chart-latency']!.bySeries)).toEqual(['p50', 'p95', 'p99']);
    expect(y('chart-latency', 'p99')).toBeLessThan(y('chart-latency', 'p95'));
    expect(y('chart-latency', 'p95')).toBeLessThan(y('chart-latency', 'p50'));
    // The PSI threshold is a dashed line across the whole plot, below the drifted feature's dot.
    expect(Object.keys(ink['chart-drift']!.bySeries)).toEqual(['energy', 'threshold']);
    expect(ink['chart-drift']!.bySeries.threshold!.pixels).toBeGreaterThan(60);
    expect(y('chart-drift', 'energy')).toBeLessThan(y('chart-drift', 'threshold'));

    // Hovering the latency chart shows the candidate's p95 in the legend, as in the summary.
    const over = (await page.$('[data-testid="chart-latency"] .u-over'))!;
    const box = (await over.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const legend = await page.$$eval('[data-testid="chart-latency"] .u-legend .u-series', (rows) =>
      rows.map((r) => [r.querySelector('.u-label')?.textContent, r.querySelector('.u-value')?.textContent]),
    );
    expect(legend).toContainEqual(['p95', `${(await latencyCell(CANDIDATE)).p95.toFixed(2)} ms`]);
  });
});
