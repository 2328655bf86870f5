// A headset's view of HTTPS: headless Chromium trusting the server's local CA-signed
// certificate (by its SPKI hash, the way a device that installed the CA trusts it) loads
// /watch/<slug> over https:// as a secure context, so WebXR is offered.
//
//   cargo build && (cd player && node --test tests/secure_context.test.mjs)

import assert from 'node:assert/strict';
import { launchChromium } from './support/browser.mjs';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';


import { Server } from './support/server.mjs';


/** A free loopback port (bound and released; the server binds it next). */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** base64 SHA-256 of a PEM certificate's SubjectPublicKeyInfo (Chromium's SPKI pin). */
function spkiHash(pem) {
  const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

let server;
let browser;
let httpsPort;

before(async () => {
  httpsPort = await freePort();
  server = await Server.start(`
[[streams]]
slug = "cam"
key = "cam-secret-key-1"
projection = "equirect"

[tls]
mode = "local-ca"
https = "127.0.0.1:${httpsPort}"
`);
  const leaf = readFileSync(join(server.dir, 'data/tls/server.crt'), 'utf8');
  browser = await launchChromium([`--ignore-certificate-errors-spki-list=${spkiHash(leaf)}`]);
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test('the watch page over https is a secure context with navigator.xr', async () => {
  const page = await browser.newPage();
  const response = await page.goto(`https://localhost:${httpsPort}/watch/cam`);
  assert.equal(response.status(), 200);
  const seen = await page.evaluate(() => ({
    secure: window.isSecureContext,
    xr: 'xr' in navigator && navigator.xr !== undefined,
    protocol: location.protocol,
  }));
  assert.deepEqual(seen, { secure: true, xr: true, protocol: 'https:' });
  // Served over HTTP/2, which Safari needs for LL-HLS.
  const version = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  assert.equal(version, 'h2');
  await page.close();
});
