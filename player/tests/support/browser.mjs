// Debian's Chromium for the browser tests, headless through playwright-core, with the
// switches every test needs on a machine without a GPU or internet. playwright-core
// starts it with a fresh temporary profile (--user-data-dir) and removes it on close.

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.PANOCAST_CHROMIUM || '/usr/bin/chromium';

/** Launches Chromium; `extraArgs` are added to the common switches. */
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-quic',
      '--disable-sync',
      // WebGL without a GPU: SwiftShader, which newer Chromium no longer falls back to
      // on its own.
      '--enable-unsafe-swiftshader',
      '--autoplay-policy=no-user-gesture-required',
      ...extraArgs,
    ],
  });
}
