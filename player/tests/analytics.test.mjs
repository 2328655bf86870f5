// Audience analytics seen from real players: three hls.js players in headless
// Chromium (Debian's package, driven by playwright-core) on one live stream of the
// real server binary with a real ffmpeg publisher.
//
//   cargo build && (cd player && node --test tests/analytics.test.mjs)
//
// Checks: the server counts the three players as three concurrent viewers, their watch
// time matches the video media hls.js loaded (within 5%), and the heatmap's hottest
// cell is the yaw the players were turned to for 20 s.

import assert from 'node:assert/strict';
import { launchChromium } from './support/browser.mjs';
import { after, before, test } from 'node:test';


import { Publisher, Server, sourceClip } from './support/server.mjs';

const ADMIN_PASSWORD = 'analytics-e2e-admin-1';
const CONFIG = `
[[streams]]
slug = "arena"
key = "arena-secret-key-1"
projection = "equirect"
`;

let server;
let browser;
let publisher;
let token;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(path, options = {}) {
  const res = await fetch(server.url(path), {
    ...options,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(options.headers || {}) },
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

/** Polls `path` until `done(json)` holds, for at most `ms`. */
async function waitFor(path, done, ms) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await api(path);
    if (last.status === 200 && done(last.json)) return last.json;
    await sleep(250);
  }
  throw new Error(`${path}: not there after ${ms} ms: ${JSON.stringify(last && last.json)}`);
}

/** A player page that counts the video media hls.js loaded (`window.__videoSeconds`). */
async function openPlayer() {
  const context = await browser.newContext({ viewport: { width: 640, height: 360 } });
  const page = await context.newPage();
  page.on('close', () => context.close().catch(() => {}));
  await page.goto(server.url('/watch/arena'));
  await page.waitForFunction(() => window.__panocast && window.__panocast.state === 'playing', null, {
    timeout: 40000,
  });
  await page.evaluate(() => {
    // Every player looks 90 degrees to the right from the moment it plays.
    window.__panocast.setView(90, 0);
    window.__videoSeconds = 0;
    window.__panocast.hls.on('hlsFragLoaded', (_e, data) => {
      if (data.frag.type !== 'main') return;
      window.__videoSeconds += data.part ? data.part.duration : data.frag.duration;
    });
  });
  return page;
}

before(async () => {
  server = await Server.start(CONFIG, { PANOCAST_ADMIN_PASSWORD: ADMIN_PASSWORD });
  browser = await launchChromium();
  publisher = new Publisher(sourceClip(), server.publishUrl('arena-secret-key-1'));
  const login = await api('/api/v1/auth/login', {
    method: 'POST',
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  });
  assert.equal(login.status, 200);
  token = login.json.access_token;
});

after(async () => {
  if (publisher) await publisher.stop();
  if (browser) await browser.close();
  if (server) await server.stop();
});

test('three players are three viewers, their watch time is what they loaded, and the heatmap shows where they looked', async () => {
  const pages = [await openPlayer(), await openPlayer(), await openPlayer()];
  const live = await waitFor('/api/v1/streams/arena/viewers', (v) => v.concurrent === 3, 10000);
  const summaryPath = `/api/v1/analytics/sessions/${live.live_session}`;

  // Watch time over a window: what the server counted against what hls.js loaded.
  const before = (await api(summaryPath)).json.watch_seconds;
  const loadedBefore = await Promise.all(pages.map((p) => p.evaluate(() => window.__videoSeconds)));
  // 20 s of playing while looking at yaw 90 (beacons go out every 10 s on their own).
  await sleep(20000);
  const loadedAfter = await Promise.all(pages.map((p) => p.evaluate(() => window.__videoSeconds)));
  const after = (await api(summaryPath)).json.watch_seconds;
  const loaded = loadedAfter.reduce((a, b) => a + b, 0) - loadedBefore.reduce((a, b) => a + b, 0);
  const counted = after - before;
  console.log(`watch time: ${counted.toFixed(1)} s counted, ${loaded.toFixed(1)} s loaded by 3 players`);
  assert.ok(loaded > 30, `the players loaded ${loaded} s of video in 20 s`);
  assert.ok(Math.abs(counted - loaded) <= 0.05 * loaded, `counted ${counted} s, loaded ${loaded} s`);

  await pages[0].evaluate(() => window.__panocast.sendHeatmap());
  const heat = await waitFor(
    `/api/v1/analytics/heatmap?scope=live_session&id=${live.live_session}`,
    (h) => h.overall.total_seconds > 0,
    10000,
  );
  // Pitch 0 is row 9; yaw 90 is column 9.
  assert.deepEqual(heat.overall.hottest, [9, 9], JSON.stringify(heat.overall.hottest));
  for (const p of pages) await p.close();
});
