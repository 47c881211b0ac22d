// The few page operations the demo's end-to-end steps need, over two drivers: playwright-core for
// Debian's Chromium, puppeteer-core over WebDriver BiDi for Debian's Firefox ESR (Playwright's
// Firefox is a patched build of its own, and geckodriver is not packaged for Debian).
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import { chromiumArgs, firefoxPrefs } from '../../vitest.config.ts';

export interface DemoPage {
  goto(url: string): Promise<void>;
  reload(): Promise<void>;
  waitForSelector(selector: string, timeoutMs: number): Promise<void>;
  /** Resolves once `predicate` returns true in the page. */
  waitForFunction(predicate: () => boolean, timeoutMs: number): Promise<void>;
  text(selector: string): Promise<string | null>;
  /** Absent, or present and not rendered (what Playwright's isHidden means). */
  isHidden(selector: string): Promise<boolean>;
  click(selector: string): Promise<void>;
  /** `data-start`/`data-end` of every element matching `selector`, as numbers. */
  intervals(selector: string): Promise<Array<{ start: number; end: number }>>;
  screenshot(path: string): Promise<void>;
  /** Cuts the page (and its service worker) off the network, or restores it. */
  setOffline(offline: boolean): Promise<void>;
  close(): Promise<void>;
}

export interface DemoBrowser {
  /** Appended to screenshot names ('' keeps Chromium's names as they were). */
  artifactSuffix: string;
  open(onProblem: (line: string) => void): Promise<DemoPage>;
}

function readIntervals(items: Element[]) {
  return items.map((li) => ({
    start: Number((li as HTMLElement).dataset.start),
    end: Number((li as HTMLElement).dataset.end),
  }));
}

/** The page calls Playwright and Puppeteer spell alike (same names, arguments and meaning). */
interface AlikePage {
  goto(url: string): Promise<unknown>;
  reload(): Promise<unknown>;
  waitForSelector(selector: string, options: { timeout: number }): Promise<unknown>;
  click(selector: string): Promise<void>;
}

function alikeOps(page: AlikePage): Pick<DemoPage, 'goto' | 'reload' | 'waitForSelector' | 'click'> {
  return {
    goto: async (url) => void (await page.goto(url)),
    reload: async () => void (await page.reload()),
    waitForSelector: async (selector, timeout) => void (await page.waitForSelector(selector, { timeout })),
    click: (selector) => page.click(selector),
  };
}

/** A page's console as both drivers report it (Playwright names a warning 'warning', Puppeteer 'warn'). */
interface ConsolePage {
  on(event: 'console', listener: (message: { type(): string; text(): string }) => void): unknown;
}

/** Sends the page's console errors and warnings to `onProblem`. */
function forwardProblems(page: ConsolePage, onProblem: (line: string) => void): void {
  page.on('console', (message) => {
    const type = message.type();
    if (type === 'error' || type === 'warning' || type === 'warn') onProblem(`${type}: ${message.text()}`);
  });
}

export const chromiumDemo: DemoBrowser = {
  artifactSuffix: '',
  async open(onProblem) {
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: chromiumArgs,
    });
    const context = await browser.newContext();
    const page = await context.newPage();
    forwardProblems(page, onProblem);
    return {
      ...alikeOps(page),
      waitForFunction: async (predicate, timeout) =>
        void (await page.waitForFunction(predicate, undefined, { timeout })),
      text: (selector) => page.textContent(selector),
      isHidden: (selector) => page.isHidden(selector),
      intervals: (selector) => page.$$eval(selector, readIntervals),
      screenshot: async (path) => void (await page.screenshot({ path, fullPage: true, timeout: 15_000 })),
      setOffline: (offline) => context.setOffline(offline),
      close: () => browser.close(),
    };
  },
};

export const firefoxDemo: DemoBrowser = {
  artifactSuffix: '-firefox',
  async open(onProblem) {
    const browser = await puppeteer.launch({
      browser: 'firefox',
      protocol: 'webDriverBiDi',
      executablePath: process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr',
      headless: true,
      extraPrefsFirefox: firefoxPrefs,
      timeout: 60_000,
    });
    const page = await browser.newPage();
    forwardProblems(page, onProblem);
    return {
      ...alikeOps(page),
      waitForFunction: async (predicate, timeout) =>
        void (await page.waitForFunction(predicate, { timeout })),
      text: (selector) => page.$eval(selector, (element) => element.textContent),
      async isHidden(selector) {
        const element = await page.$(selector);
        return !element || !(await element.isVisible());
      },
      intervals: (selector) => page.$$eval(selector, readIntervals),
      screenshot: async (path) =>
        void (await page.screenshot({ path: path as `${string}.png`, fullPage: true })),
      setOffline: (offline) => page.setOfflineMode(offline),
      close: () => browser.close(),
    };
  },
};
