/**
 * Debian's Chromium, driven by playwright-core, for the browser suites.
 * Without the browser a suite is skipped with a reason, except under
 * CI=true, where a missing browser fails it (CI installs it, see .ci/run).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const chromiumPath = process.env.ASSENT_TEST_CHROMIUM ?? '/usr/bin/chromium';
const ci = process.env.CI === 'true';
const haveChromium = existsSync(chromiumPath);

/** The `skip` of a browser suite: a reason when Chromium is missing, never under CI=true. */
export const browserSkip: string | false =
  haveChromium || ci ? false : `Chromium not installed at ${chromiumPath} (apt-get install -y chromium); required under CI=true`;

/** Headless in a container, and quiet: nothing reaches for the network on its own. */
const launchArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Starts headless Chromium; fails (rather than skips) when it is missing, which only happens under CI=true. */
export async function launchChromium(options: { extraArgs?: string[] } = {}): Promise<Browser> {
  if (!haveChromium) {
    assert.fail(`CI=true and Chromium is not installed at ${chromiumPath}: install it (apt-get install -y chromium), as .ci/run does`);
  }
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: [...launchArgs, ...(options.extraArgs ?? [])] });
}

/** Collects what would make a page silently broken: failed loads, console errors, script errors. */
export function watchPage(page: Page): string[] {
  const problems: string[] = [];
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.method()} ${req.url()} (${req.failure()?.errorText ?? '?'})`));
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${res.request().method()} ${res.url()}`);
  });
  page.on('console', (msg) => {
    // Chromium asks every new site for /favicon.ico; Assent has none, and its 404 is harmless.
    if (msg.type() === 'error' && !msg.location().url.endsWith('/favicon.ico')) problems.push(`console error: ${msg.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  return problems;
}
