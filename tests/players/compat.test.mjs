// Stock HLS players against the real panocast and a real ffmpeg publisher, in Debian's
// Chromium (playwright-core): hls.js, Shaka Player and video.js (VHS) each open the
// stream within a second of its multivariant playlist first answering, play it, and
// keep playing across a publisher reconnect (a discontinuity) and a ladder switch (each
// player told to play the other rendition of the stream's two). What a viewer notices
// is the video's clock and picture: `currentTime` must keep advancing, no player may
// report a fatal error, and after the switch the picture has the other rendition's size.
//
// The players are npm packages of this folder (pinned in package.json); a small page
// per player is served from here on another loopback port, so the HLS requests are
// cross-origin, as on a real site. The publisher encodes as it goes, as OBS does: a
// looped file's clock jumps at each loop and every player stalls there, which hls.js
// answered once by leaving the rendition it was told to play.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { launchChromium } from '../../player/tests/support/browser.mjs';
import { LivePublisher, Server } from '../../player/tests/support/server.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const MODULES = join(HERE, 'node_modules');

const FILES = {
  '/hls.html': join(HERE, 'pages/hls.html'),
  '/shaka.html': join(HERE, 'pages/shaka.html'),
  '/videojs.html': join(HERE, 'pages/videojs.html'),
  '/lib/hls.js': join(MODULES, 'hls.js/dist/hls.min.js'),
  '/lib/shaka.js': join(MODULES, 'shaka-player/dist/shaka-player.compiled.js'),
  '/lib/video.js': join(MODULES, 'video.js/dist/video.min.js'),
  '/lib/video-js.css': join(MODULES, 'video.js/dist/video-js.min.css'),
};
const PLAYERS = [
  { name: 'hls.js', page: '/hls.html' },
  { name: 'Shaka Player', page: '/shaka.html' },
  { name: 'video.js', page: '/videojs.html' },
];

const KEY = 'compat-secret-key';
const CONFIG = `
[[streams]]
slug = "compat"
key = "${KEY}"
projection = "equirect"
ladder = "compat"

# The source (640x320, passed through) and one rung below it: two video renditions.
[ladders.compat]
preset = "ultrafast"
rungs = [ { name = "r160", width = 320, height = 160, bitrate_kbps = 300 } ]
audio = [ { name = "audio-48k", bitrate_kbps = 48, channels = 1 } ]
`;
/** The heights of the stream's two video renditions. */
const HEIGHTS = [320, 160];
/** How long each player is watched, per phase. */
const WATCH_MS = 20000;
/**
 * The media time each must play in that time: most of it, with room for starting
 * from nothing (first phase) and for the gap of the reconnect (second).
 */
const MIN_START_ADVANCE_S = 14;
const MIN_RECONNECT_ADVANCE_S = 12;
const MIN_SWITCH_ADVANCE_S = 12;

let server;
let pages;
let browser;
let site;

/** Serves the pages and the players' files on a free loopback port. */
function startSite() {
  const http = createServer((req, res) => {
    const file = FILES[new URL(req.url, 'http://x').pathname];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    const type = file.endsWith('.html') ? 'text/html' : file.endsWith('.css') ? 'text/css' : 'text/javascript';
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8` });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => {
    http.listen(0, '127.0.0.1', () => resolve({ http, base: `http://127.0.0.1:${http.address().port}` }));
  });
}

/** Resolves at the first 200 of `url`, polled every 20 ms, within `ms`. */
async function firstAnswer(url, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const r = await fetch(url).catch(() => null);
    if (r && r.status === 200) return;
    await new Promise((done) => setTimeout(done, 20));
  }
  throw new Error(`${url} did not answer 200 within ${ms} ms`);
}

/** Each player's video clock and errors, sampled now. */
async function sample() {
  return Promise.all(pages.map((page) => page.evaluate(() => ({
    time: document.querySelector('video')?.currentTime ?? 0,
    height: document.querySelector('video')?.videoHeight ?? 0,
    errors: window.playerErrors || [],
    log: window.playerLog || [],
  }))));
}

/**
 * Samples every player once a second for `ms`; asserts that each reported no fatal
 * error and played at least `minAdvance` seconds of media in that time.
 */
async function assertPlaying(phase, ms, minAdvance) {
  const first = await sample();
  const deadline = Date.now() + ms;
  let last = first;
  while (Date.now() < deadline) {
    await new Promise((done) => setTimeout(done, 1000));
    last = await sample();
  }
  const report = PLAYERS.map((p, i) => `${p.name}: ${first[i].time.toFixed(2)} → ${last[i].time.toFixed(2)} s, ${last[i].height} px high, errors ${JSON.stringify(last[i].errors)}`);
  console.log(`${phase}:\n  ${report.join('\n  ')}`);
  PLAYERS.forEach((p, i) => {
    assert.deepEqual(last[i].errors, [], `${phase}: ${p.name} reported errors`);
    assert.ok(last[i].time - first[i].time >= minAdvance, `${phase}: ${report[i]}`);
  });
}

before(async () => {
  server = await Server.start(CONFIG);
  site = await startSite();
  browser = await launchChromium();
  pages = await Promise.all(PLAYERS.map(() => browser.newPage({ viewport: { width: 800, height: 480 } })));
  // Loaded before the stream exists, so each player starts as soon as it is asked to.
  await Promise.all(PLAYERS.map((p, i) => pages[i].goto(`${site.base}${p.page}`)));
});

after(async () => {
  await browser?.close();
  site?.http.close();
  await server?.stop();
});

test('hls.js, Shaka and video.js start on a fresh stream and play on across a reconnect and a ladder switch', async () => {
  const playlist = server.url('/hls/compat/index.m3u8');
  let publisher = new LivePublisher(server.publishUrl(KEY));
  try {
    await firstAnswer(playlist, 60000);
    const opened = Date.now();
    await Promise.all(pages.map((page) => page.evaluate((src) => window.start(src), playlist)));
    assert.ok(Date.now() - opened < 1000, `the players took ${Date.now() - opened} ms to start`);
    // Starting is part of playing: the first phase begins the moment the pages load.
    await assertPlaying('from the first segment', WATCH_MS, MIN_START_ADVANCE_S);

    await publisher.stop();
    publisher = new LivePublisher(server.publishUrl(KEY));
    await assertPlaying('across a reconnect', WATCH_MS, MIN_RECONNECT_ADVANCE_S);
    // It was a real reconnect: the playlist marks where the second publisher began.
    const media = await (await fetch(server.url('/hls/compat/video.m3u8'))).text();
    assert.match(media, /^#EXT-X-DISCONTINUITY$/m, media);

    // A ladder switch: each player to the rendition it is not showing.
    const before = await sample();
    const targets = before.map((s) => (s.height === HEIGHTS[0] ? HEIGHTS[1] : HEIGHTS[0]));
    const refused = await Promise.all(pages.map((page, i) => page.evaluate((h) => window.switchTo(h), targets[i])));
    PLAYERS.forEach((p, i) => assert.equal(refused[i], null, `${p.name} could not switch: ${refused[i]}`));
    await assertPlaying('across a ladder switch', WATCH_MS, MIN_SWITCH_ADVANCE_S);
    const shown = await sample();
    PLAYERS.forEach((p, i) => console.log(`${p.name}'s log: ${shown[i].log.join('; ')}`));
    PLAYERS.forEach((p, i) => assert.equal(shown[i].height, targets[i],
      `${p.name} showed ${before[i].height} px high before the switch and ${shown[i].height} after, not ${targets[i]}; its log: ${shown[i].log.join('; ')}`));
  } finally {
    await publisher.stop();
  }
});
