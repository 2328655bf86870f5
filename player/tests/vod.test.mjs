// On-demand playback in the built-in player: a live session of the real server,
// recorded, then played at /watch/vod/<asset> in headless Chromium (Debian's package,
// driven by playwright-core) with hls.js, and sought with the seek bar.
//
//   cargo build && (cd player && node --test tests/vod.test.mjs)

import assert from 'node:assert/strict';
import { launchChromium } from './support/browser.mjs';
import { after, before, test } from 'node:test';


import { Publisher, Server, sourceClip } from './support/server.mjs';

const ADMIN_PASSWORD = 'vod-e2e-admin-pass-1';
const CONFIG = `
[[streams]]
slug = "lecture"
key = "lecture-secret-key-1"
projection = "equirect"
reconnect_window_s = 0
record = { enabled = true }
`;

let server;
let browser;
let token;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(path) {
  const res = await fetch(server.url(path), { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

/** Polls until `find()` returns something, for at most `ms`. */
async function waitFor(what, find, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const found = await find();
    if (found) return found;
    await sleep(250);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

before(async () => {
  server = await Server.start(CONFIG, { PANOCAST_ADMIN_PASSWORD: ADMIN_PASSWORD });
  browser = await launchChromium();
  const res = await fetch(server.url('/api/v1/auth/login'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  });
  assert.equal(res.status, 200);
  token = (await res.json()).access_token;
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test('a recorded session plays on demand with a seek bar that lands where it is put', async () => {
  // About ten seconds of broadcast: four complete segments or more.
  const publisher = new Publisher(sourceClip(), server.publishUrl('lecture-secret-key-1'));
  await waitFor(
    'four live segments',
    async () => {
      const r = await fetch(server.url('/hls/lecture/video.m3u8'));
      return r.status === 200 && (await r.text()).split('#EXTINF').length > 5;
    },
    40000,
  );
  await publisher.stop();
  const asset = await waitFor(
    'the finished recording',
    async () => {
      const list = await api('/api/v1/assets?limit=100');
      return (list.json.items || []).find(
        (a) => a.source === 'live_session' && a.renditions.some((r) => r.kind === 'hls' && r.state === 'ready'),
      );
    },
    40000,
  );

  const page = await browser.newPage({ viewport: { width: 960, height: 540 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(server.url(`/watch/vod/${asset.id}`));
  await page.waitForFunction(() => window.__panocast && window.__panocast.state === 'playing', null, {
    timeout: 30000,
  });
  const duration = await page.evaluate(() => window.__panocast.video.duration);
  assert.ok(Number.isFinite(duration), `a VOD has a finite duration, not ${duration}`);
  assert.ok(Math.abs(duration - asset.duration_s) < 1, `${duration} s played, ${asset.duration_s} s recorded`);
  assert.equal(await page.textContent('.pc-live'), '▶ VOD');
  await page.waitForSelector('.pc-seek:not([hidden])');

  // Drag the seek bar to the middle: the video lands there and plays on.
  const target = duration / 2;
  await page.evaluate((t) => {
    const seek = document.querySelector('.pc-seek');
    seek.value = String(t);
    seek.dispatchEvent(new Event('input', { bubbles: true }));
  }, target);
  await page.waitForFunction((t) => Math.abs(window.__panocast.video.currentTime - t) < 1, target, { timeout: 10000 });
  await page.waitForFunction((t) => window.__panocast.video.currentTime > t + 1, target, { timeout: 15000 });
  const clock = await page.textContent('.pc-clock');
  assert.match(clock, /^\d+:\d\d \/ \d+:\d\d$/);
  assert.deepEqual(errors, []);
  await page.close();
});
