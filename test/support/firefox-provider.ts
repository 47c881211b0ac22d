import { defineBrowserProvider } from '@vitest/browser';
import puppeteer, { type Browser, type BrowserContext, type Page } from 'puppeteer-core';
import type { BrowserProvider, BrowserProviderOption, TestProject } from 'vitest/node';

/**
 * A Vitest browser provider for Debian's Firefox ESR, driven by puppeteer-core over WebDriver
 * BiDi: geckodriver (webdriverio) is not packaged for Debian and Playwright's Firefox is a patched
 * build of its own, so neither can run here. It opens the page Vitest asks for in a fresh user
 * context per session and nothing more: no module mocker and no `userEvent`/locator commands
 * (the suite's tests use neither), while the project's own `commands` run in Node as usual.
 */

export interface FirefoxProviderOptions {
  executablePath: string;
  /** Profile preferences (about:config) for the throwaway profile puppeteer makes. */
  prefs?: Record<string, unknown>;
  /** How long Firefox may take to start before the run fails (ms). */
  launchTimeoutMs?: number;
}

const traceToStdout = process.env.EDGESHIP_FIREFOX_STDOUT === '1';

export function firefoxEsr(options: FirefoxProviderOptions): BrowserProviderOption {
  return defineBrowserProvider({
    name: 'puppeteer-firefox',
    supportedBrowser: ['firefox'],
    options,
    providerFactory: (project) => new FirefoxProvider(project, options),
  });
}

class FirefoxProvider implements BrowserProvider {
  readonly name = 'puppeteer-firefox';
  readonly supportsParallelism = true;
  #browser: Promise<Browser> | null = null;
  readonly #sessions = new Map<string, { context: BrowserContext; page: Page }>();

  constructor(
    private readonly project: TestProject,
    private readonly options: FirefoxProviderOptions,
  ) {}

  #launch(): Promise<Browser> {
    this.#browser ??= puppeteer.launch({
      browser: 'firefox',
      protocol: 'webDriverBiDi',
      executablePath: this.options.executablePath,
      headless: this.project.config.browser.headless,
      // EDGESHIP_FIREFOX_STDOUT=1: every console line of pages and workers on Firefox's stdout,
      // shown in the test output (how a worker that hangs can be traced).
      extraPrefsFirefox: {
        ...this.options.prefs,
        ...(traceToStdout ? { 'devtools.console.stdout.content': true } : {}),
      },
      dumpio: traceToStdout,
      timeout: this.options.launchTimeoutMs ?? 60_000,
    });
    return this.#browser;
  }

  getCommandsContext(sessionId: string) {
    const session = this.#sessions.get(sessionId);
    if (!session) throw new Error(`no Firefox page for session ${sessionId}`);
    return { page: session.page, context: session.context };
  }

  async openPage(sessionId: string, url: string): Promise<void> {
    const previous = this.#sessions.get(sessionId);
    this.#sessions.delete(sessionId);
    await previous?.context.close();
    const browser = await this.#launch();
    // A user context per session keeps each test file's IndexedDB and OPFS apart, as Playwright's
    // browser contexts do for Chromium. A window, not a tab: Firefox hides every tab but the newest
    // one and clamps a hidden page's timers to one a second (20 × setTimeout(10) took 19 s), which
    // stretched backoffs and polls of parallel test files past their timeouts.
    const context = await browser.createBrowserContext();
    const page = await context.newPage({ type: 'window' });
    this.#sessions.set(sessionId, { context, page });
    await page.goto(url, { timeout: 0 });
  }

  async close(): Promise<void> {
    const browser = this.#browser;
    this.#browser = null;
    this.#sessions.clear();
    await (await browser?.catch(() => null))?.close();
  }
}
