// The operator dashboard in a real Chromium (playwright-core) against a real update server on
// loopback: it shows the rollout, and halting it from the page changes what devices get.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chooseRelease, rolloutBucket, seededBytes, verifyManifest } from '@edgeship/protocol';
import { Hono } from 'hono';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish, startTestServer, type TestServer } from '../../test/support/server.ts';
import { chromiumArgs } from '../../vitest.config.ts';
import { DASHBOARD_CSP, mountDashboard } from '../src/routes/dashboard.ts';
import { ensureDashboardBuilt } from './build.ts';

const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const artifacts = join(repo, 'test-artifacts');
const APP = 'demo-app';
const CHANNEL = 'stable';

let t: TestServer;
let browser: Browser;
let page: Page;
let operatorToken: string;
/** Every URL the page asked for: the dashboard must need nothing from outside the server. */
const requested: string[] = [];

beforeAll(async () => {
  const distDir = await ensureDashboardBuilt();
  t = await startTestServer({ mount: (app) => mountDashboard(app, { distDir }) });
  operatorToken = t.server.tokens!.operator;
  await publish(t, seededBytes(4096, 1), { version: '1.0.0' });
  await publish(t, seededBytes(4096, 2), {
    version: '1.1.0',
    gates: {
      dataset: 'ef'.repeat(32),
      frames: 120,
      results: [{ name: 'accuracy-vs-production', value: 0.004, limit: 0.01 }],
      against: { app: APP, channel: CHANNEL, version: '1.0.0' },
    },
  });
  await t.operator.promoteRelease(APP, CHANNEL, 'demo', '1.0.0');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: chromiumArgs,
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  page.on('request', (request) => requested.push(request.url()));
  await mkdir(artifacts, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

async function manifestModel() {
  const response = await fetch(`${t.server.url}/v1/apps/${APP}/channels/${CHANNEL}/manifest`);
  expect(response.status).toBe(200);
  const { manifest } = await verifyManifest(await response.text(), {
    root: t.server.trustedRoot,
    app: APP,
    channel: CHANNEL,
    now: new Date(),
  });
  return manifest.models.find((m) => m.name === 'demo')!;
}

/** A device id whose bucket falls inside a rollout at this share (so it runs the candidate). */
async function deviceInside(salt: string, shareBps: number): Promise<string> {
  for (let i = 0; ; i++) {
    if ((await rolloutBucket(salt, `device-${i}`)) < shareBps) return `device-${i}`;
  }
}

async function openDashboard(token?: string): Promise<void> {
  await page.goto(`${t.server.url}/dashboard/${token ? `?token=${encodeURIComponent(token)}` : ''}`);
  await page.waitForSelector('main[data-loaded="true"]');
}

/** A rollout of demo 1.1.0 on the channel, at `shareBps`. */
const startRollout = (shareBps: number) =>
  t.operator.createRollout({ app: APP, channel: CHANNEL, model: 'demo', release: '1.1.0', shareBps });

const row = (id: string) => `[data-testid="rollout-row"][data-rollout-id="${id}"]`;

describe('operator dashboard in Chromium', () => {
  it('shows the rollout with its share; halting it from the page takes it out of what devices get', async () => {
    const rollout = await startRollout(2500);
    const device = await deviceInside(rollout.salt, 2500);
    expect((await chooseRelease(await manifestModel(), device)).active?.version).toBe('1.1.0');

    await openDashboard(operatorToken);
    // The token is taken from the URL once and removed from it (and from history).
    expect(new URL(page.url()).searchParams.has('token')).toBe(false);
    await expect(page.textContent('[data-testid="whoami"]')).resolves.toContain('operator');
    await expect(page.textContent('[data-testid="channel-title"]')).resolves.toBe(`${APP} / ${CHANNEL}`);
    await expect(page.locator('[data-testid="channel-link"]').allTextContents()).resolves.toEqual([
      `${APP} / ${CHANNEL}`,
    ]);
    await expect(page.textContent('[data-testid="channels"]')).resolves.toBe(`Channels${APP} / ${CHANNEL}`);
    await expect(
      page.getAttribute(`${row(rollout.id)} [data-testid="rollout-share"]`, 'data-share-bps'),
    ).resolves.toBe('2500');
    await expect(page.textContent(`${row(rollout.id)} [data-testid="rollout-share"]`)).resolves.toBe('25%');
    await expect(page.getAttribute(row(rollout.id), 'data-state')).resolves.toBe('active');
    await expect(
      page.textContent('[data-testid="model-row"][data-model="demo"] [data-testid="production"]'),
    ).resolves.toBe('1.0.0');
    // The fleet API answered (no telemetry has arrived yet), so the charts show their empty state.
    await page.waitForSelector('[data-testid="fleet-charts"]:not([data-state="loading"])');
    await expect(page.getAttribute('[data-testid="fleet-charts"]', 'data-state')).resolves.toBe('empty');
    await expect(page.getAttribute('[data-testid="chart-latency"]', 'data-state')).resolves.toMatch(
      /^(empty|drawn)$/,
    );

    await page.click(`${row(rollout.id)} [data-testid="halt-button"]`);
    await page.fill('[data-testid="reason-input"]', 'p95 latency regressed on the canary');
    await page.click('[data-testid="reason-confirm"]');
    await page.waitForSelector(`${row(rollout.id)}[data-state="halted"]`);
    await expect(page.textContent(`${row(rollout.id)} [data-testid="rollout-share"]`)).resolves.toBe('0%');
    await expect(page.textContent(`${row(rollout.id)} [data-testid="rollout-reason"]`)).resolves.toBe(
      'p95 latency regressed on the canary',
    );
    await expect(page.textContent('[data-testid="verdicts"]')).resolves.toContain(
      'p95 latency regressed on the canary',
    );
    await expect(page.isHidden('[data-testid="error"]')).resolves.toBe(true);
    // An artifact for people, best-effort: it never fails the test after its checks passed.
    await page
      .screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true, timeout: 15_000 })
      .catch((error: Error) => console.warn(`dashboard.png not taken: ${error.message}`));

    // The admin API and the signed manifest agree: halted, share 0, and the device is back on 1.0.0.
    const after = await t.viewer.getRollout(rollout.id);
    expect(after).toMatchObject({
      state: 'halted',
      shareBps: 0,
      reason: 'p95 latency regressed on the canary',
    });
    const { entries } = await t.viewer.audit({ app: APP, channel: CHANNEL });
    expect(entries.find((e) => e.action === 'rollout.halt')).toMatchObject({ actor: 'bootstrap-operator' });
    const model = await manifestModel();
    expect(model.rollout).toBeNull();
    expect((await chooseRelease(model, device)).active?.version).toBe('1.0.0');
  });

  it('shows the typed error when an action fails (the rollout was halted behind the page)', async () => {
    const rollout = await startRollout(1000);
    await openDashboard();
    await page.waitForSelector(`${row(rollout.id)}[data-state="active"]`);
    await t.operator.halt(rollout.id, 'halted from the CLI');

    await page.fill(`${row(rollout.id)} [data-testid="share-input"]`, '50');
    await page.click(`${row(rollout.id)} [data-testid="share-button"]`);
    await page.waitForSelector('[data-testid="error"]:not([hidden])');
    await expect(page.textContent('[data-testid="error-code"]')).resolves.toBe('E_INVALID_STATE');
    await expect(page.textContent('[data-testid="error-message"]')).resolves.toContain('not active');
    // The view reloaded after the failure and shows the rollout as the server has it.
    await page.waitForSelector(`${row(rollout.id)}[data-state="halted"]`);
    expect((await t.viewer.getRollout(rollout.id)).shareBps).toBe(0);
  });

  it('a viewer token sees the rollouts, with the operator buttons disabled', async () => {
    const rollout = await startRollout(500);
    await page.evaluate(() => sessionStorage.clear());
    await openDashboard(t.server.tokens!.viewer);
    await expect(page.getAttribute('[data-testid="whoami"]', 'data-role')).resolves.toBe('viewer');
    await expect(page.locator('[data-testid="rollout-row"]').count()).resolves.toBe(3);
    await expect(page.isDisabled(`${row(rollout.id)} [data-testid="halt-button"]`)).resolves.toBe(true);
    await expect(page.isDisabled(`${row(rollout.id)} [data-testid="share-button"]`)).resolves.toBe(true);
  });

  it('shows the gates a release was signed with, and the production release they compared with', async () => {
    await openDashboard(operatorToken);
    await page.click('[data-testid="release-row"][data-release="demo@1.1.0"] button');
    const gates = await page.waitForSelector('[data-testid="signed-gates"]');
    const text = (await gates.textContent()) ?? '';
    expect(text).toContain('demo-app/stable production 1.0.0');
    expect(text).toMatch(/accuracy-vs-production\s*0\.004 \(limit 0\.01\)/);
    expect(text).toContain('120 frames');
  });

  it('loads nothing from outside the server, under a CSP that allows only itself', async () => {
    const origin = new URL(t.server.url).origin;
    expect(requested.length).toBeGreaterThan(0);
    expect(requested.filter((url) => new URL(url).origin !== origin)).toEqual([]);
    const response = await fetch(`${t.server.url}/dashboard/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(response.headers.get('cache-control')).toBe('no-cache');
    const script = /src="(\/dashboard\/assets\/[^"]+\.js)"/.exec(await response.text())![1]!;
    const asset = await fetch(`${t.server.url}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    // An unknown page gets the app shell; a missing hashed asset is a real 404.
    expect((await fetch(`${t.server.url}/dashboard/some/page`)).headers.get('content-type')).toMatch(
      /text\/html/,
    );
    expect((await fetch(`${t.server.url}/dashboard/assets/gone-123.js`)).status).toBe(404);
  });

  it('refuses to mount a dashboard that was never built, saying how to build it', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'edgeship-no-dashboard-'));
    try {
      expect(() => mountDashboard(new Hono(), { distDir: empty })).toThrow(/npm run build:dashboard/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
