/**
 * Debian's chromium for the tests that look at a page in a real browser (the report, the
 * playground, a heap shared with web workers): where it is, a skip that says what to install
 * when it is not there, how it is started, and what a tab reports as going wrong.
 * scripts/system-packages.mjs installs it before the suites run.
 */

import { existsSync } from 'node:fs';

import puppeteer, { type Browser, type Page } from 'puppeteer-core';

/** Debian's chromium (`apt-get install -y chromium`); HEAPLAB_CHROMIUM points elsewhere. */
export const CHROMIUM = process.env.HEAPLAB_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Whether the browser is there; when not, warns that `test` is skipped and how to install it.
 * @param test what the warning calls the skipped test, e.g. "report browser test"
 */
export function hasChromium(test: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  console.warn(`${test} skipped: no browser at ${CHROMIUM} (install Debian's with: apt-get install -y chromium, or set HEAPLAB_CHROMIUM)`);
  return false;
}

/** Starts the browser headless, as a container's root can run it. */
export function launchChromium(): Promise<Browser> {
  return puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/** Collects what goes wrong in `tab` from now on: console errors, page errors, failed requests. */
export function recordTabErrors(tab: Page): string[] {
  const errors: string[] = [];
  tab.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  tab.on('pageerror', (error) => errors.push(`page error: ${(error as Error).message}`));
  tab.on('requestfailed', (request) => errors.push(`request failed: ${request.url()}`));
  return errors;
}
