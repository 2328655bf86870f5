// The web app (portal `/`, console `/admin`, API docs `/api/v1/docs`) in real headless
// Chromium against the real server binary, with a real ffmpeg publisher and a real
// HTTP receiver for webhooks. Each page is checked with axe-core (no serious or
// critical violation) and photographed at 1280x800 and 390x844 into
// target/artifacts/web (PANOCAST_WEB_ARTIFACTS overrides).
//
//   cargo build && (cd player && node --test tests/web_app.test.mjs)

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import AxeBuilder from '@axe-core/playwright';

import { launchChromium } from './support/browser.mjs';
import { Publisher, REPO, Server, sourceClip } from './support/server.mjs';

const ARTIFACTS = process.env.PANOCAST_WEB_ARTIFACTS || join(REPO, 'target/artifacts/web');
const ADMIN_PASSWORD = 'web-admin-password-1';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const CONFIG = `
[auth]
open_registration = true

[webhooks]
allow_private_targets = true
`;

/** An event two days ahead, at noon UTC, on the public `harbour` stream. */
const HARBOUR_EVENT = 'Harbour night tour';
const HARBOUR_EVENT_START = (() => {
  const d = new Date(Date.now() + 2 * 24 * 3600 * 1000);
  d.setUTCHours(12, 0, 0, 0);
  return d.toISOString();
})();

let server;
let browser;
let clip;
const publishers = [];

/** A page in a fresh context at `size`; page errors and console errors are collected. */
async function openPage(path, { size = DESKTOP, mobile = false, storage } = {}) {
  const context = await browser.newContext({
    viewport: size,
    isMobile: mobile,
    hasTouch: mobile,
    deviceScaleFactor: 1,
    storageState: storage,
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // A poster that does not exist yet is a 404 the page shows as a title card.
    if (m.type() === 'error' && !/404 \(Not Found\)/.test(m.text())) page.problems.push(`console: ${m.text()}`);
  });
  page.on('close', () => context.close().catch(() => {}));
  if (path !== null) await page.goto(server.url(path));
  return page;
}

/** Waits until the 360 player in the page's <iframe> plays (window.__panocast.state). */
async function waitPlaying(page, timeout = 20000) {
  const iframe = page.locator('iframe[src^="/watch/"]');
  await iframe.waitFor({ timeout });
  const frame = await (await iframe.elementHandle()).contentFrame();
  await frame.waitForURL(/\/watch\//, { timeout });
  await frame.waitForFunction(() => window.__panocast && window.__panocast.state === 'playing', null, { timeout });
}

/** Serious or critical axe violations of what the page shows now. */
async function axe(page) {
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21aa']).analyze();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** Screenshots at desktop and phone size (the phone one by resizing this page). */
async function photograph(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: join(ARTIFACTS, `${name}-1280x800.png`), fullPage: false });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: join(ARTIFACTS, `${name}-390x844.png`), fullPage: false });
  // Nothing may stick out sideways at 390 px.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.setViewportSize(DESKTOP);
  return overflow;
}

/** axe + both screenshots + no horizontal scrolling on a phone. */
async function checkPage(page, name) {
  assert.deepEqual(await axe(page), [], `${name}: axe violations`);
  const overflow = await photograph(page, name);
  assert.ok(overflow <= 1, `${name}: ${overflow} px wider than a 390 px phone`);
}

async function signInConsole(page, username, password) {
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

async function adminToken() {
  const r = await fetch(server.url('/api/v1/auth/login'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).access_token;
}

before(async () => {
  clip = sourceClip();
  server = await Server.start(CONFIG, { PANOCAST_ADMIN_PASSWORD: ADMIN_PASSWORD });
  browser = await launchChromium();
});

after(async () => {
  await Promise.all(publishers.map((p) => p.stop()));
  await browser?.close();
  await server?.stop();
});

describe('web app', () => {
  let consolePage;

  test('an admin signs in, creates a stream, copies its key; ffmpeg publishes and the console shows it live with viewers', async () => {
    consolePage = await openPage('/admin');
    const page = consolePage;
    await checkPage(page, 'console-signin');
    await signInConsole(page, 'admin', ADMIN_PASSWORD);
    await page.waitForURL(/\/admin\/streams$/);

    await page.getByLabel('Slug (in URLs)').fill('rooftop');
    await page.getByLabel('Title', { exact: true }).fill('Rooftop sunrise camera');
    await page.getByRole('button', { name: 'Create stream' }).click();
    const keyPanel = page.getByRole('region', { name: /Stream key for rooftop/ });
    await keyPanel.waitFor();
    await page.getByRole('button', { name: 'Copy key' }).click();
    await page.getByRole('button', { name: 'Copied' }).waitFor();
    const key = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(key, (await page.getByTestId('stream-key').textContent()).trim());
    assert.match(await keyPanel.textContent(), /Keyframe interval\s*2 s/);
    // The exact server URL (the listener the server bound), not a guess from the page.
    const obsServer = (await page.getByTestId('obs-server').locator('code').textContent()).trim();
    assert.equal(obsServer, `${server.rtmp}/live`);
    await checkPage(page, 'console-streams-key');

    // Published as OBS would: to the server shown, with the key shown.
    const started = Date.now();
    publishers.push(new Publisher(clip, `${obsServer}/${key}`));
    await page.getByTestId('state-rooftop').filter({ hasText: 'Live' }).waitFor({ timeout: 10000 });
    console.log(`console showed the stream live ${((Date.now() - started) / 1000).toFixed(1)} s after ffmpeg started`);
    await page.getByTestId('bitrate-rooftop').filter({ hasText: /[kM]b\/s/ }).waitFor({ timeout: 10000 });
    // Dropped frames beside the transcode state, as the stream's status counts them.
    await page.getByTestId('dropped-rooftop').filter({ hasText: /^\d+ frames dropped$/ }).waitFor();

    // A viewer opens the stream page (the 360 player plays in it): one viewer.
    const watcher = await openPage('/s/rooftop');
    await waitPlaying(watcher);
    await page.getByTestId('viewers-rooftop').filter({ hasText: /^[1-9]/ }).waitFor({ timeout: 20000 });
    await checkPage(page, 'console-streams-live');
    await watcher.close();
    assert.deepEqual(page.problems, []);
  });

  test('a viewer signs up, subscribes, sees the bell light up when the stream goes live, and finds it by a word of its title', async () => {
    const token = await adminToken();
    const created = await fetch(server.url('/api/v1/streams'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ slug: 'harbour', title: 'Harbour lighthouse view' }),
    });
    assert.equal(created.status, 201);
    const { stream_key: key } = await created.json();
    const hidden = await fetch(server.url('/api/v1/streams'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ slug: 'backstage', title: 'Backstage', visibility: 'private' }),
    });
    assert.equal(hidden.status, 201);
    for (const [title, stream] of [
      [HARBOUR_EVENT, 'harbour'],
      ['Private rehearsal', 'backstage'],
    ]) {
      const ev = await fetch(server.url('/api/v1/events'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ title, stream, scheduled_start: HARBOUR_EVENT_START }),
      });
      assert.equal(ev.status, 201, await ev.text());
    }

    const page = await openPage('/');
    await page.getByRole('heading', { name: 'Live now' }).waitFor();
    // Signed out: the public stream's event with its countdown; the private one never.
    const upcoming = page.getByRole('list', { name: 'Upcoming' });
    await upcoming.getByText(HARBOUR_EVENT).waitFor();
    assert.match(await upcoming.textContent(), /in [12] d \d+ h/);
    assert.equal(await page.getByText('Private rehearsal').count(), 0);
    await checkPage(page, 'portal-home-signed-out');
    await page.getByRole('navigation', { name: 'Account' }).getByRole('link', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign up' }).click();
    await page.getByLabel('User name').fill('viewer1');
    await page.getByLabel('Password').fill('viewer-password-1');
    await checkPage(page, 'portal-signup');
    await page.getByRole('button', { name: 'Sign up' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();

    await page.goto(server.url('/s/harbour'));
    await page.getByRole('heading', { name: /Harbour lighthouse view/ }).waitFor();
    await page.getByRole('button', { name: 'Subscribe' }).click();
    await page.getByRole('button', { name: 'Unsubscribe' }).waitFor();
    await checkPage(page, 'portal-stream-offline');
    // What is unread before the stream goes live (a welcome, say).
    const unread = async () => {
      const label = await page.getByRole('button', { name: /^Notifications/ }).getAttribute('aria-label');
      return Number(label.match(/(\d+) unread/)?.[1] || 0);
    };
    const before = await unread();

    publishers.push(new Publisher(clip, server.publishUrl(key)));
    await page.waitForFunction(
      (n) => {
        const label = document.querySelector('.bell')?.getAttribute('aria-label') || '';
        return Number(label.match(/(\d+) unread/)?.[1] || 0) > n;
      },
      before,
      { timeout: 20000 },
    );
    assert.equal(await page.locator('.bell.has-unread').count(), 1, 'the bell is lit');
    await page.getByRole('button', { name: /Notifications, / }).click();
    await page.getByRole('region', { name: 'Notifications' }).getByText(/harbour|Harbour/).first().waitFor();
    await checkPage(page, 'portal-bell-open');

    await page.getByLabel('Search streams, events and videos').fill('lighthouse');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('list', { name: 'Search results' }).getByRole('link', { name: 'Harbour lighthouse view', exact: true }).waitFor();
    await checkPage(page, 'portal-search');

    await page.goto(server.url('/'));
    await page.getByRole('link', { name: /Harbour lighthouse view/ }).first().waitFor({ timeout: 10000 });
    await checkPage(page, 'portal-home-live');
    assert.deepEqual(page.problems, []);
  });

  test('a broadcaster uploads a file through the page, waits for ready, plays it and downloads an MP3 that decodes', async () => {
    const token = await adminToken();
    const made = await fetch(server.url('/api/v1/users'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ username: 'caster', password: 'caster-password-1', role: 'broadcaster' }),
    });
    assert.equal(made.status, 201);
    const page = await openPage('/admin/assets');
    await signInConsole(page, 'caster', 'caster-password-1');
    await page.goto(server.url('/admin/assets'));
    await page.getByRole('heading', { name: 'Upload a video' }).waitFor();
    await checkPage(page, 'console-assets');

    // A short MP4 made here, dropped into the file input of the drop zone.
    const file = join(server.dir, 'upload-clip.mp4');
    const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-i', clip, '-t', '3', '-c', 'copy', file]);
    assert.equal(r.status, 0, String(r.stderr));
    await page.getByLabel('Video file').setInputFiles(file);
    await page.locator('progress#upload-progress[value="100"]').waitFor({ timeout: 20000 });
    const row = page.locator('tr[data-asset]').filter({ hasText: 'upload-clip' });
    await row.getByTestId('asset-state').filter({ hasText: 'ready' }).waitFor({ timeout: 50000 });
    await row.getByRole('link', { name: 'Play' }).waitFor({ timeout: 50000 });
    await checkPage(page, 'console-assets-ready');

    const downloading = page.waitForEvent('download');
    await row.getByRole('button', { name: 'Download MP3' }).click();
    const download = await downloading;
    const mp3 = join(server.dir, 'download.mp3');
    await download.saveAs(mp3);
    const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', mp3]);
    assert.equal(probe.status, 0, String(probe.stderr));
    assert.equal(String(probe.stdout).trim(), 'mp3');

    await row.getByRole('link', { name: 'Play' }).click();
    await page.waitForURL(/\/v\/as_/);
    await waitPlaying(page);
    await checkPage(page, 'portal-asset');
    assert.deepEqual(page.problems, []);
  });

  test('an admin adds a webhook endpoint and a test send shows in the delivery log', async () => {
    const received = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      const page = consolePage;
      await page.getByRole('link', { name: 'Webhooks' }).click();
      await page.getByLabel('URL').fill(`http://127.0.0.1:${receiver.address().port}/hook`);
      await page.getByRole('button', { name: 'Add endpoint' }).click();
      await page.getByRole('region', { name: 'Signing secret' }).waitFor();
      await page.getByRole('button', { name: 'Send test' }).click();
      await page.getByTestId('deliveries').getByText('HTTP 204').first().waitFor({ timeout: 15000 });
      assert.ok(received.some((b) => b.includes('webhook.test')), 'the receiver got the test message');
      await checkPage(page, 'console-webhooks');
    } finally {
      receiver.close();
    }
  });

  test('every other console page and the API docs pass axe and fit a phone', async () => {
    const page = consolePage;
    await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Events' }).click();
    await page.getByRole('heading', { name: 'Events', exact: true }).waitFor();
    const grid = page.getByRole('grid');
    await grid.waitFor();
    const monthHeading = page.locator('#cal-h');
    const thisMonth = (await monthHeading.textContent()).trim();
    // The keyboard walks the days: from today to the harbour event's day, whose events
    // are listed under the grid.
    const { today, target, days } = await page.evaluate((iso) => {
      const key = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
      const now = new Date();
      const at = new Date(iso);
      const midnight = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate());
      return { today: key(now), target: key(at), days: Math.round((midnight(at) - midnight(now)) / 864e5) };
    }, HARBOUR_EVENT_START);
    await grid.locator(`[data-day="${today}"]`).focus();
    for (let i = 0; i < days; i += 1) await page.keyboard.press('ArrowRight');
    await page.waitForFunction((day) => document.activeElement?.dataset.day === day, target, { timeout: 5000 });
    // Keys faster than the page paints (a held key repeating): a day back and forth,
    // with a render but no paint between them, leaves the focus on the same day.
    await page.evaluate(async () => {
      const key = (name) => document.activeElement.dispatchEvent(new KeyboardEvent('keydown', { key: name, bubbles: true, cancelable: true }));
      key('ArrowLeft');
      // preact renders in a microtask and runs effects after the next paint.
      for (let i = 0; i < 3; i += 1) await Promise.resolve();
      key('ArrowRight');
    });
    await page.waitForFunction((day) => document.activeElement?.dataset.day === day, target, { timeout: 5000 });
    const thatDay = page.getByRole('list', { name: 'Events that day' });
    await thatDay.getByText(HARBOUR_EVENT).waitFor();
    // The admin's console also shows the private stream's event that day.
    await thatDay.getByText('Private rehearsal').waitFor();
    assert.match(await grid.locator(`[data-day="${target}"]`).getAttribute('aria-label'), /, 2 events$/);
    await checkPage(page, 'console-events-calendar');
    // A month on and back, by keys and by buttons.
    await page.keyboard.press('PageDown');
    await monthHeading.filter({ hasNotText: thisMonth }).waitFor();
    await page.getByRole('button', { name: 'Previous month' }).click();
    await monthHeading.filter({ hasText: thisMonth }).waitFor();
    await page.getByRole('button', { name: 'Next month' }).click();
    await monthHeading.filter({ hasNotText: thisMonth }).waitFor();
    for (const [link, heading, name] of [
      ['Events', 'Events', 'console-events'],
      ['Analytics', 'Analytics', 'console-analytics'],
      ['Users', 'Users', 'console-users'],
    ]) {
      await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: link }).click();
      await page.getByRole('heading', { name: heading, exact: true }).waitFor();
      await checkPage(page, name);
    }
    // Disabling a user in the console: they can no longer sign in.
    await page.getByRole('button', { name: 'Disable viewer1' }).click();
    await page.getByRole('button', { name: 'Enable viewer1' }).waitFor();
    const login = await fetch(server.url('/api/v1/auth/login'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'viewer1', password: 'viewer-password-1' }),
    });
    assert.equal(login.status, 401);

    const docs = await openPage('/api/v1/docs');
    await docs.locator('.swagger-ui .information-container').waitFor({ timeout: 20000 });
    await docs.getByRole('button', { name: /Authorize/ }).first().waitFor();
    await photograph(docs, 'api-docs');
    assert.deepEqual(docs.problems, [], 'the docs page runs under the CSP');
    assert.deepEqual(page.problems, []);
  });
});

test('a server without open registration offers no sign-up', async () => {
  const closed = await Server.start('', { PANOCAST_ADMIN_PASSWORD: ADMIN_PASSWORD });
  try {
    const page = await openPage(null);
    await page.goto(closed.url('/signin'));
    await page.getByText('Accounts here are made by an admin').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Sign up' }).count(), 0);
    await checkPage(page, 'portal-signin-closed');
    assert.deepEqual(page.problems, []);
    await page.close();
  } finally {
    await closed.stop();
  }
});

test('the portal first page stays under 150 KB of gzipped JavaScript', async () => {
  const html = await (await fetch(server.url('/'))).text();
  let total = 0;
  for (const [, src] of html.matchAll(/(?:src|href)="(\/web\/[^"]+\.js)"/g)) {
    const r = await fetch(server.url(src), { headers: { 'accept-encoding': 'gzip' } });
    total += Number(r.headers.get('content-length'));
    assert.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  }
  console.log(`portal first page: ${(total / 1024).toFixed(1)} KB of gzipped JavaScript`);
  writeFileSync(join(ARTIFACTS, 'portal-first-page-bytes.txt'), `${total}\n`);
  assert.ok(total > 0 && total < 150 * 1024, `${total} bytes`);
});
