/**
 * Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven
 * by npm playwright-core (never a Playwright-downloaded browser:
 * `npx playwright install` is not used; test/README.md lists the peers).
 *
 * Pages must be loaded from the server under test: a page on about:blank
 * that connects to 127.0.0.1 is blocked by Chromium's local-network-access
 * checks.
 */
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM, chromiumAvailable, requirePeer } from '../helpers/peers.js';

/** No sandbox (CI runs as root), no GPU, no QUIC, no background traffic. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The skip message for node:test when Chromium is missing (throws in CI, where it must be installed). */
export function chromiumSkip(): string | false {
  return requirePeer('chromium', chromiumAvailable(), 'apt-get install chromium, and npm install for playwright-core');
}

export interface LaunchOptions {
  /** Accept the test's self-signed certificate (wss:// and https:// pages). */
  ignoreCertificateErrors?: boolean;
}

/**
 * Launches headless Chromium. playwright-core gives every launch a fresh,
 * temporary user data dir (--user-data-dir: nothing is shared between runs)
 * and deletes it on close(). Callers must close() the browser in an after() hook.
 */
export async function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  const args = [...CHROMIUM_ARGS];
  if (options.ignoreCertificateErrors) args.push('--ignore-certificate-errors');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args, timeout: 30_000 });
}
